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
    fileprivate func replacingEntry(with entry: String) -> String {
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: "{entry}") {
            out += rest[..<range.lowerBound]
            out += entry
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
