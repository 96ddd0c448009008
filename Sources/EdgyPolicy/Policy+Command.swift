extension Policy.Run {
    /// The argv to exec: `command` (or a task's own, when `allowCommandOverride`), with every
    /// `{entry}` replaced by the entry's path relative to `workdir` (the jail's cwd).
    /// - Parameter override: A task's command; ignored unless `allowCommandOverride` is true.
    /// - Returns: Empty when there is nothing to run.
    public func argv(override: [String]? = nil) -> [String] {
        let base = (allowCommandOverride ? override.flatMap { $0.isEmpty ? nil : $0 } : nil) ?? command
        guard let entry else { return base }
        return base.map { $0.replacingEntry(with: entry) }
    }
}

extension String {
    /// Byte by byte: `{entry}` is ASCII, so it never matches inside a multi-byte character.
    /// (`firstRange(of:)` went through the string-processing generics, which the runtime
    /// instantiated by name at every `edgy run`.)
    fileprivate func replacingEntry(with entry: String) -> String {
        let placeholder = Array("{entry}".utf8)
        let bytes = Array(utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == placeholder[0], bytes[index...].starts(with: placeholder) {
                out += entry.utf8
                index += placeholder.count
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
