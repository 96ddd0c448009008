import EdgyJudge
import EdgyModel
import Testing

struct JudgeTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test(arguments: [
        ("42\n", "42\n", true), ("42", "42\n", false), ("42\n", "43\n", false),
    ])
    func exactComparesBytes(output: String, expected: String, passes: Bool) {
        #expect(Judge.compare(Self.bytes(output), expected: Self.bytes(expected), comparator: .exact).passed == passes)
    }

    @Test func exactNamesTheFirstDifferentLine() {
        let (passed, detail) = Judge.compare(Self.bytes("1\n2\n3\n"), expected: Self.bytes("1\n2\n4\n"), comparator: .exact)
        #expect(!passed)
        #expect(detail == #"line 3: expected "4", got "3""#)
    }

    @Test(arguments: [
        ("  42  \n\n", "42", true), ("a \nb\t\n", "a\nb", true), ("a\n\nb", "a\nb", false), ("a b", "a  b", false),
    ])
    func trimIgnoresWhitespaceAtTheEnds(output: String, expected: String, passes: Bool) {
        #expect(Judge.compare(Self.bytes(output), expected: Self.bytes(expected), comparator: .trim).passed == passes)
    }

    @Test(arguments: [
        ("3.1415927\n", "3.14159265", 1e-6, true), ("3.15", "3.14", 1e-3, false), ("1e9 x", "1000000001 x", 1e-6, true),
        ("1 2", "1 2 3", 1e-6, false), ("1 y", "1 x", 1e-6, false), ("nan", "nan", 1e-6, true), ("inf", "1", 1.0, false),
    ])
    func floatComparesNumbersWithinTheTolerance(output: String, expected: String, tolerance: Double, passes: Bool) {
        #expect(Judge.compare(Self.bytes(output), expected: Self.bytes(expected), comparator: .float(tolerance: tolerance)).passed == passes)
    }

    @Test(arguments: [
        (#"\d+"#, "123\n", true), (#"\d+"#, "12a", false), ("a|b", "b", true), ("(?:ab)+", "ababab", true),
        ("(?:ab)+", "aba", false), ("x{2,3}", "xxx", true), ("x{2,3}", "xxxx", false), ("[^0-9]*", "abc", true),
        ("^a.c$", "abc", true), ("a.c", "a\nc", false), (#"a\sc"#, "a\nc", true), ("[a-]b", "-b", true),
        (#"\(\)"#, "()", true), ("a{", "a{", true), ("", "", true), ("", "x", false), ("(a|)+b", "aab", true),
        (#"\w+@\w+\.com"#, "me@edgy.com", true), ("é+", "ééé", true),
    ])
    func regexMatchesTheWholeOutput(pattern: String, output: String, matches: Bool) {
        #expect(Judge.compare(Self.bytes(output), expected: Self.bytes(pattern), comparator: .regex).passed == matches, "\(pattern) ~ \(output)")
    }

    @Test(arguments: [
        ("(", "missing ')'"), (")", "unbalanced ')'"), ("*a", "nothing to repeat"), ("[a", "missing ']'"),
        (#"(a)\1"#, "unknown escape"), ("(?=a)", "only (?: … ) groups"), ("a{1001}", "at most 1000"),
        ("a{3,2}", "below the minimum"), ("[z-a]", "backwards"), (#"\"#, "ends with"),
        ("(a{1000}){1000}", "expands to more than"),
    ])
    func malformedPatternsAreRefusedWithAReason(pattern: String, reason: String) {
        let message = Judge.check(Self.bytes(pattern), comparator: .regex)
        #expect(message?.contains(reason) == true, "\(pattern): \(String(describing: message))")
    }

    /// The pattern that takes a backtracking engine exponential time is linear here.
    @Test func pathologicalPatternsStayLinear() throws {
        let regex = try LinearRegex("(a*)*(a|aa)*b")
        let text = String(repeating: "a", count: 200_000)
        let clock = ContinuousClock()
        let elapsed = clock.measure { #expect(regex.matchesWhole(text) == false) }
        #expect(elapsed < .seconds(30))
        // A budget cuts a large match short with no answer, never a wrong one.
        #expect(regex.matchesWhole(text, budget: 1000) == nil)
    }

    @Test func verdictsFollowTheJailsEnding() {
        func report(_ outcome: Outcome, exit: Int32? = 0, truncated: UInt64 = 0) -> AttemptReport {
            var report = AttemptReport(outcome: outcome, policyName: "p")
            report.exitCode = exit
            report.stdoutTruncatedBytes = truncated
            return report
        }
        #expect(Judge.verdict(report(.exited), passed: true) == .accepted)
        #expect(Judge.verdict(report(.exited), passed: false) == .wrongAnswer)
        #expect(Judge.verdict(report(.exited, exit: 1), passed: true) == .runtimeError)
        #expect(Judge.verdict(report(.exited, truncated: 10), passed: true) == .outputLimit)
        #expect(Judge.verdict(report(.signaled, exit: nil), passed: true) == .runtimeError)
        #expect(Judge.verdict(report(.wallTimeout, exit: nil), passed: true) == .timeLimit)
        #expect(Judge.verdict(report(.cpuTimeout, exit: nil), passed: true) == .timeLimit)
        #expect(Judge.verdict(report(.memoryLimit, exit: nil), passed: true) == .memoryLimit)
        #expect(Judge.verdict(report(.outputLimit, exit: nil), passed: true) == .outputLimit)
        #expect(Judge.verdict(report(.seccompViolation, exit: nil), passed: true) == .seccompViolation)
    }
}
