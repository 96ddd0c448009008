import TOMLKit

/// A guard in front of the TOML parser. The vendored toml++ asserts (aborting the process, or
/// undefined behaviour without assertions) on two shapes of broken text, which are reported here,
/// with their line, before the text reaches it:
/// - a table header whose key starts with a character that cannot start a key (`[!run]`, `[[[a]]]`);
/// - a `}` where an array expects a value (`a = [}`, `a = [1, }`), found by the fuzzer.
public enum TOMLGuard {
    /// A syntax error, with its line when the parser knows it.
    public struct SyntaxError: Error, Sendable {
        public var line: Int?
        public var message: String
    }

    /// Parses `text` after the guard's checks: the one way Edgy hands text to toml++.
    public static func parse(_ text: String) throws(SyntaxError) -> TOMLTable {
        if let problem = firstProblem(in: text) { throw SyntaxError(line: problem.line, message: problem.message) }
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw SyntaxError(line: error.source.begin.line, message: error.description)
        } catch {
            throw SyntaxError(line: nil, message: "\(error)")
        }
    }

    /// The first such problem: its line (1-based) and what is wrong.
    static func firstProblem(in text: String) -> (line: Int, message: String)? {
        var scanner = Scanner()
        var line = 1
        for rawLine in Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if scanner.atStatementStart, !isValidHeader(rawLine) {
                return (line, "a table header must start with a key (letters, digits, _ or -, or a quoted key)")
            }
            if !scanner.consume(rawLine) { return (line, "expected a value or `]` in the array, got `}`") }
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

    /// Tracks whether a line starts a new statement (not inside a multi-line string or an array or
    /// inline table that spans lines) and whether an array waits for a value. Strings and comments
    /// are skipped so their brackets do not count.
    private struct Scanner {
        /// The open `[` and `{`, innermost last.
        var open: [UInt8] = []
        /// After an array's `[` or `,`, until the next value (spaces, newlines and comments aside).
        var awaitingArrayValue = false
        var multiline: UInt8?  // the quote of an open `"""` or `'''`

        var atStatementStart: Bool { open.isEmpty && multiline == nil }

        /// False when the line holds a `}` where an array awaits a value.
        mutating func consume(_ line: ArraySlice<UInt8>) -> Bool {
            var i = line.startIndex
            func triple(_ quote: UInt8) -> Bool {
                line.endIndex - i >= 3 && line[i] == quote && line[i + 1] == quote && line[i + 2] == quote
            }
            while i < line.endIndex {
                let byte = line[i]
                if multiline == nil, byte != UInt8(ascii: " "), byte != UInt8(ascii: "\t"), byte != UInt8(ascii: "\r"),
                   byte != UInt8(ascii: "#") {
                    if awaitingArrayValue, byte == UInt8(ascii: "}") { return false }
                    awaitingArrayValue = false
                }
                if let quote = multiline {
                    if byte == UInt8(ascii: "\\"), quote == UInt8(ascii: "\"") { i += 2; continue }
                    if triple(quote) { multiline = nil; i += 3; continue }
                    i += 1
                    continue
                }
                switch byte {
                case UInt8(ascii: "#"):
                    return true
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    if triple(byte) { multiline = byte; i += 3; continue }
                    i += 1
                    while i < line.endIndex, line[i] != byte {
                        i += (line[i] == UInt8(ascii: "\\") && byte == UInt8(ascii: "\"")) ? 2 : 1
                    }
                    i += 1
                case UInt8(ascii: "["):
                    open.append(byte)
                    awaitingArrayValue = true
                    i += 1
                case UInt8(ascii: "{"):
                    open.append(byte)
                    i += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    _ = open.popLast()
                    i += 1
                case UInt8(ascii: ","):
                    awaitingArrayValue = open.last == UInt8(ascii: "[")
                    i += 1
                default:
                    i += 1
                }
            }
            return true
        }
    }
}
