import Foundation

/// Finds the line of each key in a policy file's text.
///
/// TOMLKit reports positions only for syntax errors, so semantic errors (wrong type, bad value,
/// unknown key) are located by this small scanner. It tracks the current `[table]` or
/// `[[array]]` header and records every `key =` line; it does not validate TOML (TOMLKit has done
/// that), so it only needs to skip multi-line arrays, inline tables and multi-line strings.
struct SourceLines {
    /// Table path ("" for the top level, "limits", "mounts#1" for the second `[[mounts]]`).
    private var headers: [String: Int] = [:]
    private var keys: [String: Int] = [:]
    private let lines: [Substring]

    init(_ text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var current = ""
        var arrayCounts: [String: Int] = [:]
        var depth = 0
        var inMultiline: String?  // the closing delimiter of an open multi-line string
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            var line = raw[...]
            if let closing = inMultiline {
                guard let range = line.range(of: closing) else { continue }
                inMultiline = nil
                line = line[range.upperBound...]
                depth += Self.bracketDelta(line, multiline: &inMultiline)
                continue
            }
            if depth > 0 {
                depth = max(0, depth + Self.bracketDelta(line, multiline: &inMultiline))
                continue
            }
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if trimmed.hasPrefix("[[") {
                let name = Self.headerName(trimmed.dropFirst(2), closing: "]]")
                let n = arrayCounts[name, default: 0]
                arrayCounts[name] = n + 1
                current = "\(name)#\(n)"
                headers[current] = number
                headers[name] = headers[name] ?? number
                continue
            }
            if trimmed.hasPrefix("[") {
                current = Self.headerName(trimmed.dropFirst(), closing: "]")
                headers[current] = number
                continue
            }
            guard let (keyPath, rest) = Self.splitKey(trimmed) else { continue }
            var table = current
            var path = keyPath
            let key = path.removeLast()
            if !path.isEmpty {
                let prefix = path.joined(separator: ".")
                table = table.isEmpty ? prefix : "\(table).\(prefix)"
            }
            let id = "\(table)\u{0}\(key)"
            if keys[id] == nil { keys[id] = number }
            depth = max(0, Self.bracketDelta(rest, multiline: &inMultiline))
        }
    }

    /// The line of `key` in `table` (index for `[[array]]` tables), else the table's header line.
    func line(table: String, index: Int? = nil, key: String? = nil) -> Int? {
        let tableID = index.map { "\(table)#\($0)" } ?? table
        if let key, let line = keys["\(tableID)\u{0}\(key)"] { return line }
        return headers[tableID]
    }

    /// The line of a quoted string element (e.g. one name in `allow = [...]`) at or after `start`.
    func line(ofElement element: String, from start: Int?) -> Int? {
        guard let start, start >= 1, start <= lines.count else { return start }
        for number in start...min(lines.count, start + 500) {
            let line = lines[number - 1]
            if line.contains("\"\(element)\"") || line.contains("'\(element)'") { return number }
        }
        return start
    }

    private static func headerName(_ s: Substring, closing: String) -> String {
        let inner = s.range(of: closing).map { s[..<$0.lowerBound] } ?? s
        // Appended by hand: `joined(separator:)` is a generic the runtime instantiates at its first call.
        var name = ""
        for (index, part) in inner.split(separator: ".").enumerated() {
            if index > 0 { name += "." }
            name += unquote(part)
        }
        return name
    }

    private static func unquote(_ s: Substring) -> String {
        let t = s.trimmingSpaces
        if t.count >= 2, let f = t.first, f == "\"" || f == "'", t.last == f {
            return String(t.dropFirst().dropLast())
        }
        return String(t)
    }

    /// Splits `a.b = value` into (["a", "b"], " value"), respecting quoted key segments.
    private static func splitKey(_ line: Substring) -> ([String], Substring)? {
        var quote: Character?
        for index in line.indices {
            let c = line[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "=" {
                let keyText = line[..<index]
                var segments: [String] = []
                var segment = ""
                var q: Character?
                for k in keyText {
                    if let open = q {
                        if k == open { q = nil } else { segment.append(k) }
                    } else if k == "\"" || k == "'" {
                        q = k
                    } else if k == "." {
                        segments.append(segment.trimmingSpaces)
                        segment = ""
                    } else {
                        segment.append(k)
                    }
                }
                segments.append(segment.trimmingSpaces)
                guard !segments.contains(where: \.isEmpty) else { return nil }
                return (segments, line[line.index(after: index)...])
            }
        }
        return nil
    }

    /// Net `[`/`{` nesting opened by a value, ignoring brackets inside strings and comments.
    private static func bracketDelta(_ s: Substring, multiline: inout String?) -> Int {
        var delta = 0
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c == "#" { break }
            if c == "\"" || c == "'" {
                let triple = String(repeating: c, count: 3)
                if s[i...].hasPrefix(triple) {
                    let after = s.index(i, offsetBy: 3)
                    if let end = s[after...].range(of: triple) {
                        i = end.upperBound
                        continue
                    }
                    multiline = triple
                    return delta
                }
                var j = s.index(after: i)
                while j < s.endIndex, s[j] != c {
                    if c == "\"", s[j] == "\\" { j = s.index(after: j) ; if j == s.endIndex { break } }
                    j = s.index(after: j)
                }
                i = j < s.endIndex ? s.index(after: j) : j
                continue
            }
            if c == "[" || c == "{" { delta += 1 }
            if c == "]" || c == "}" { delta -= 1 }
            i = s.index(after: i)
        }
        return delta
    }
}

extension StringProtocol {
    /// Without leading spaces and tabs and trailing spaces, tabs and carriage returns. Moves two
    /// indices instead of chaining `drop(while:)` and `reversed()`, whose nested generic types the
    /// runtime built by name at `edgy run`'s start.
    var trimmingSpaces: String {
        var start = startIndex
        var end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" { formIndex(after: &start) }
        while end > start {
            let last = index(before: end)
            guard self[last] == " " || self[last] == "\t" || self[last] == "\r" else { break }
            end = last
        }
        return String(self[start..<end])
    }
}
