/// A guard in front of the TOML parser: the vendored toml++ asserts (aborting the process, or
/// undefined behaviour without assertions) on a table header whose key starts with a character
/// that cannot start a key, such as `[!run]` or `[[[a]]]`. Such a header is reported here, with its
/// line, before the text reaches the parser.
enum TOMLHeaderCheck {
    /// The first line (1-based) holding a header `[` or `[[` not followed by a key start, or nil.
    static func firstBadHeader(in text: String) -> Int? {
        var scanner = Scanner()
        var line = 1
        for rawLine in Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if scanner.atStatementStart, !isValidHeader(rawLine) { return line }
            scanner.consume(rawLine)
            line += 1
        }
        return nil
    }

    /// True unless the line is a table header whose key does not start with a key character.
    private static func isValidHeader(_ line: ArraySlice<UInt8>) -> Bool {
        var rest = line.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard rest.first == UInt8(ascii: "[") else { return true }
        rest = rest.dropFirst()
        if rest.first == UInt8(ascii: "[") { rest = rest.dropFirst() }
        rest = rest.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = rest.first else { return false }
        return isKeyStart(first)
    }

    private static func isKeyStart(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""), UInt8(ascii: "'"):
            return true
        default:
            return false
        }
    }

    /// Tracks whether a line starts a new statement: not inside a multi-line string or an array or
    /// inline table that spans lines. Strings and comments are skipped so their brackets do not count.
    private struct Scanner {
        var depth = 0
        var multiline: UInt8?  // the quote of an open `"""` or `'''`

        var atStatementStart: Bool { depth == 0 && multiline == nil }

        mutating func consume(_ line: ArraySlice<UInt8>) {
            var i = line.startIndex
            func triple(_ quote: UInt8) -> Bool {
                line.endIndex - i >= 3 && line[i] == quote && line[i + 1] == quote && line[i + 2] == quote
            }
            while i < line.endIndex {
                let byte = line[i]
                if let quote = multiline {
                    if byte == UInt8(ascii: "\\"), quote == UInt8(ascii: "\"") { i += 2; continue }
                    if triple(quote) { multiline = nil; i += 3; continue }
                    i += 1
                    continue
                }
                switch byte {
                case UInt8(ascii: "#"):
                    return
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    if triple(byte) { multiline = byte; i += 3; continue }
                    i += 1
                    while i < line.endIndex, line[i] != byte {
                        i += (line[i] == UInt8(ascii: "\\") && byte == UInt8(ascii: "\"")) ? 2 : 1
                    }
                    i += 1
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    i += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    depth = max(0, depth - 1)
                    i += 1
                default:
                    i += 1
                }
            }
        }
    }
}
