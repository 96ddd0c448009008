/// One `Range: bytes=…` request (RFC 9110 §14.1.2) against a representation of `size` bytes.
public enum ByteRange: Sendable, Hashable {
    /// Serve the whole representation (no header, another unit, or several ranges, which a server
    /// may answer in full).
    case whole
    /// Serve `bytes[lower...upper]` with 206.
    case partial(lower: Int, upper: Int)
    /// 416 with `Content-Range: bytes */size`.
    case unsatisfiable

    /// Reads the header's value. A malformed value is ignored (the whole answer), as RFC 9110
    /// allows; only a well-formed range outside the representation is unsatisfiable.
    public static func parse(_ header: String?, size: Int) -> ByteRange {
        guard let header else { return .whole }
        let value = header.utf8
        guard value.count <= 200 else { return .whole }
        let text = Substring(header).trimmingPrefix(" ")
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst(6).trimmingSpaces()
        guard !spec.contains(",") else { return .whole }
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingSpaces()
        let last = spec[spec.index(after: dash)...].trimmingSpaces()
        if first.isEmpty {
            // `bytes=-N`: the last N bytes.
            guard let suffix = number(last) else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .partial(lower: max(size - suffix, 0), upper: size - 1)
        }
        guard let lower = number(first) else { return .whole }
        var upper = size - 1
        if !last.isEmpty {
            guard let given = number(last), given >= lower else { return .whole }
            upper = min(given, size - 1)
        }
        guard lower < size else { return .unsatisfiable }
        return .partial(lower: lower, upper: upper)
    }

    /// Decimal digits only, at most 18 of them (no overflow); nil otherwise.
    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }

    fileprivate func trimmingPrefix(_ character: Character) -> Substring {
        var s = self
        while s.first == character { s = s.dropFirst() }
        return s
    }
}
