import EdgyModel

/// Grades one case: the jail's ending and its stdout against what was expected.
public enum Judge {
    /// Whether `output` passes under `comparator`, and if not, a short reason.
    public static func compare(_ output: [UInt8], expected: [UInt8], comparator: CaseComparator) -> (passed: Bool, detail: String?) {
        switch comparator {
        case .exact:
            if output == expected { return (true, nil) }
            return (false, firstDifference(output, expected))
        case .trim:
            let a = trimmed(output), b = trimmed(expected)
            if a == b { return (true, nil) }
            return (false, firstDifference(a, b))
        case .float(let tolerance):
            return compareTokens(output, expected, tolerance: tolerance)
        case .regex:
            let pattern = String(decoding: expected, as: UTF8.self)
            guard let regex = try? LinearRegex(pattern) else { return (false, "the expected pattern does not compile") }
            var text = String(decoding: output, as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }
            switch regex.matchesWhole(text) {
            case true?: return (true, nil)
            case false?: return (false, "the output does not match the pattern")
            case nil: return (false, "the output is too large to match against this pattern")
            }
        }
    }

    /// A case's verdict and, for a wrong answer, why: the output is compared (once) only when the
    /// jail exited 0 with all of its stdout.
    public static func grade(_ report: AttemptReport, expected: [UInt8], comparator: CaseComparator) -> (verdict: Verdict, detail: String?) {
        let comparable = report.outcome == .exited && report.exitCode == 0 && report.stdoutTruncatedBytes == 0
        let comparison = comparable ? compare(report.stdout, expected: expected, comparator: comparator) : (passed: false, detail: nil)
        let verdict = verdict(report, passed: comparison.passed)
        return (verdict, verdict == .wrongAnswer ? comparison.detail : nil)
    }

    /// The case's verdict from the jail's report and, when it exited 0, the comparison. Output cut
    /// at the cap cannot be compared: `output_limit`, whichever overflow action the policy takes.
    public static func verdict(_ report: AttemptReport, passed: Bool) -> Verdict {
        switch report.outcome {
        case .exited where report.stdoutTruncatedBytes > 0: .outputLimit
        case .exited: report.exitCode == 0 ? (passed ? .accepted : .wrongAnswer) : .runtimeError
        case .wallTimeout, .cpuTimeout: .timeLimit
        case .memoryLimit: .memoryLimit
        case .outputLimit: .outputLimit
        case .seccompViolation: .seccompViolation
        case .signaled, .setupError, .cancelled, .lost, .dependencyError: .runtimeError
        }
    }

    /// Whether `pattern` is one `compare` can use; the message says why not.
    public static func check(_ expected: [UInt8], comparator: CaseComparator) -> String? {
        switch comparator {
        case .regex:
            guard let pattern = String(validating: expected, as: UTF8.self) else { return "a regex must be UTF-8 text" }
            do throws(RegexError) { _ = try LinearRegex(pattern) } catch { return "regex: \(error)" }
            return nil
        case .float(let tolerance):
            return tolerance.isFinite && tolerance >= 0 && tolerance <= 1 ? nil : "tolerance must be a number from 0 to 1"
        case .exact, .trim:
            return nil
        }
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0d || byte == 0x0a || byte == 0x0b || byte == 0x0c }

    /// Whitespace gone from both ends of the text and from the end of every line.
    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false).map { line -> ArraySlice<UInt8> in
            var line = line
            while let last = line.last, isSpace(last) { line.removeLast() }
            return line
        }
        while let first = lines.first, first.isEmpty { lines.removeFirst() }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        if var first = lines.first {
            while let byte = first.first, isSpace(byte) { first.removeFirst() }
            lines[0] = first
        }
        return Array(lines.joined(separator: [0x0a]))
    }

    static func compareTokens(_ output: [UInt8], _ expected: [UInt8], tolerance: Double) -> (Bool, String?) {
        let got = output.split(whereSeparator: isSpace)
        let want = expected.split(whereSeparator: isSpace)
        for (i, (a, b)) in zip(got, want).enumerated() where a != b {
            if let x = number(a), let y = number(b), abs(x - y) <= tolerance || abs(x - y) <= tolerance * abs(y) { continue }
            return (false, "token \(i + 1): expected \(excerpt(b)), got \(excerpt(a))")
        }
        guard got.count == want.count else { return (false, "expected \(want.count) tokens, got \(got.count)") }
        return (true, nil)
    }

    static func number(_ token: ArraySlice<UInt8>) -> Double? {
        guard token.count <= 64, let value = Double(String(decoding: token, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }

    /// "line 3: expected 5, got 6", or where one output ends before the other.
    static func firstDifference(_ output: [UInt8], _ expected: [UInt8]) -> String {
        let got = output.split(separator: 0x0a, omittingEmptySubsequences: false)
        let want = expected.split(separator: 0x0a, omittingEmptySubsequences: false)
        for (i, (a, b)) in zip(got, want).enumerated() where a != b {
            return "line \(i + 1): expected \(excerpt(b)), got \(excerpt(a))"
        }
        if got.count < want.count { return "the output ends at line \(got.count); expected \(want.count) lines" }
        return "the output has \(got.count) lines; expected \(want.count)"
    }

    /// At most 80 bytes of a token or line, quoted.
    static func excerpt(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes.prefix(80), as: UTF8.self)
        let quoted = text.debugDescription
        return bytes.count > 80 ? quoted + "…" : quoted
    }
}
