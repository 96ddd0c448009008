import EdgyFuzzSupport
import EdgyJSON
import EdgyModel
import Foundation
import PropertyBased
import Testing

/// `SortedJSON` must write exactly what `JSONEncoder` writes with sorted keys and slashes as they
/// are: stored reports and answers are compared, hashed and read back as bytes.
@Suite struct SortedJSONTests {
    static func reference<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try SortedJSON.fallbackEncoder().encode(value))
    }

    static func expectSame<T: Encodable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fast = try SortedJSON.encode(value)
        let reference = try Self.reference(value)
        #expect(String(decoding: fast, as: UTF8.self) == String(decoding: reference, as: UTF8.self), sourceLocation: sourceLocation)
        #expect(fast == reference, sourceLocation: sourceLocation)
    }

    @Test func attemptReportsMatchJSONEncoder() async {
        await propertyCheck(count: 400, input: Self.report) { report in
            try Self.expectSame(report)
            #expect(try report.json() == Self.reference(report))
        }
    }

    @Test func stringsAreEscapedAsJSONEncoderDoes() async throws {
        // Every ASCII character, the line separators JavaScript trips on, a BOM, astral plane.
        try Self.expectSame((0..<0x80).map { String(UnicodeScalar(UInt8($0))) } + ["\u{2028}\u{2029}", "\u{FEFF}", "é😀", "a/b\\c\"d", ""])
        await propertyCheck(count: 300, input: Self.text) { text in try Self.expectSame([text]) }
    }

    @Test func numbersAreWrittenAsJSONEncoderDoes() async throws {
        try Self.expectSame([0, -0.0, 1, 1.5, 0.1, 1e-7, 1e21, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e16, 1764990000.123456, -2.5e-300])
        try Self.expectSame([Float(0.1), 1e10, -3.25])
        try Self.expectSame([Int.min, Int.max, 0])
        try Self.expectSame([Int8.min, Int8.max])
        try Self.expectSame([UInt64.max])
        await propertyCheck(count: 300, input: Gen.double(in: -1e300...1e300), Gen.int(in: Int.min...Int.max)) { double, int in
            try Self.expectSame(Numbers(double: double, float: Float(double), int: int, int32: Int32(truncatingIfNeeded: int), uint16: UInt16(truncatingIfNeeded: int)))
        }
        await propertyCheck(count: 200, input: Gen.double(in: -1...1)) { small in try Self.expectSame([small * 1e-12, small, small * 1e15]) }
    }

    @Test func objectsComeOutInKeyOrder() async throws {
        try Self.expectSame(["a_b": 1, "aB": 2, "a": 3, "A": 4, "_": 5, "a1": 6, "a10": 7, "a2": 8, "é": 9, "a b": 10])
        try Self.expectSame([3: "x", 20: "y", 1: "z"])
        await propertyCheck(count: 300, input: Self.object) { object in
            try Self.expectSame(object)
            try Self.expectSame(Nested(members: object, list: Array(object.keys), optional: object.isEmpty ? nil : object))
        }
    }

    @Test func specialValuesMatchJSONEncoder() throws {
        try Self.expectSame(Data([0, 1, 2, 250, 255]))
        try Self.expectSame(["at": Date(timeIntervalSinceReferenceDate: 12.5)])
        try Self.expectSame([URL(string: "https://example.com/a?b=c")!])
        try Self.expectSame([Decimal(string: "12.50")!])
        try Self.expectSame(Empty())
        try Self.expectSame([Empty()])
        try Self.expectSame(Optionals(a: nil, b: nil))
        try Self.expectSame(Optionals(a: 1, b: "x"))
        try Self.expectSame([[Int?.none, 1], []])
        try Self.expectSame("top level")
        try Self.expectSame(Repeated())
        try Self.expectSame(KeyedObject(["\u{E9}", "b", "e\u{301}"]))  // é twice, composed and decomposed
        try Self.expectSame(KeyedObject(["z", "a", "\u{E9}x", "e\u{301}x"]))
        try Self.expectSame(KeyedObject(["b", "a", "b"]))
        try Self.expectSame(NestedContainers())
    }

    @Test func valuesJSONCannotHoldAreRefused() {
        #expect(throws: EncodingError.self) { try SortedJSON.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { try SortedJSON.encode(["x": Double.infinity]) }
    }

    // ---- shapes --------------------------------------------------------------------------------

    struct Numbers: Encodable {
        var double: Double
        var float: Float
        var int: Int
        var int32: Int32
        var uint16: UInt16
    }

    struct Nested: Encodable {
        var members: [String: Int]
        var list: [String]
        var optional: [String: Int]?
    }

    /// Opens a container and writes nothing.
    struct Empty: Encodable {
        func encode(to encoder: any Encoder) throws { _ = encoder.container(keyedBy: CodingKeys.self) }
        enum CodingKeys: CodingKey {}
    }

    struct Optionals: Encodable {
        var a: Int?
        var b: String?
    }

    /// Writes a key twice (JSONEncoder keeps the last).
    struct Repeated: Encodable {
        enum CodingKeys: String, CodingKey { case a, b }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(1, forKey: .b)
            try c.encode(2, forKey: .a)
            try c.encode(3, forKey: .b)
        }
    }

    struct NestedContainers: Encodable {
        enum CodingKeys: String, CodingKey { case inner, list, zeta }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("z", forKey: .zeta)
            var inner = c.nestedContainer(keyedBy: CodingKeys.self, forKey: .inner)
            try inner.encode(1, forKey: .list)
            var list = c.nestedUnkeyedContainer(forKey: .list)
            try list.encode(true)
        }
    }

    // ---- generators ----------------------------------------------------------------------------

    /// Text with what needs escaping: controls, quotes, backslashes, slashes, non-ASCII.
    static let text = Generator<String, Shrink.None<String>> { rng in
        let pieces: [String] = ["a", "Z", "0", "/", "\\", "\"", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "日本", "😀", "\u{2028}", " ", "_"]
        return (0..<Int.random(in: 0...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static let object = Generator<[String: Int], Shrink.None<[String: Int]>> { rng in
        Dictionary((0..<Int.random(in: 0...8, using: &rng)).map { _ in (text.run(using: &rng), Int.random(in: -9...9, using: &rng)) }) { a, _ in a }
    }

    static let report = Generator<AttemptReport, Shrink.None<AttemptReport>> { rng in
        func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &rng) ? make() : nil }
        func string() -> String { text.run(using: &rng) }
        func int() -> Int { Int.random(in: 0...Int(Int32.max), using: &rng) }
        func bytes() -> [UInt8] { (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        var report = AttemptReport(
            outcome: Outcome.allCases.randomElement(using: &rng)!, exitCode: maybe { Int32.random(in: -1...255, using: &rng) },
            signal: maybe { Int32.random(in: 1...64, using: &rng) }, signalName: maybe(string), seccompSyscall: maybe(string),
            setup: maybe { SetupFailure(stage: string(), errno: maybe(string), detail: maybe(string)) }, wallMs: int(), cpuUserMs: int(),
            cpuSysMs: int(), maxRssKib: int(), memoryPeakBytes: maybe { UInt64.random(in: 0...UInt64.max, using: &rng) }, oomKills: int(),
            pidsPeak: maybe(int), pidsLimitHits: int(), stdout: bytes(), stderr: Array(string().utf8),
            stdoutTruncatedBytes: UInt64.random(in: 0...1 << 40, using: &rng), stderrTruncatedBytes: 0,
            startedAt: Double.random(in: 0...2e9, using: &rng), finishedAt: Double(int()) / 1000, policyName: string(), policyDigest: string())
        report.network = maybe { NetworkReport(bytesOut: 1, bytesIn: 2, connections: int(), refused: 0, refusedDestinations: [string(), string()]) }
        report.dependencies = maybe {
            DependencyReport(key: string(), source: .cached, installMs: maybe(int), layerBytes: maybe { 5 }, log: maybe(string), error: maybe(string), retryable: maybe { true })
        }
        report.outputs = maybe {
            OutputsReport(
                files: (0..<Int.random(in: 0...5, using: &rng)).map { _ in .init(path: string(), size: int(), sha256: string(), mode: 0o644) },
                omitted: [.init(path: string(), reason: .maxFiles)], omittedCount: int(), truncated: Bool.random(using: &rng),
                collectMs: Double.random(in: 0...100, using: &rng), error: maybe(string))
        }
        report.steps = maybe {
            [
                StepReport(
                    name: string(), kind: .run, status: .succeeded, report: AttemptReport(outcome: .exited, exitCode: 0, stdout: bytes()),
                    cases: [CaseReport(index: 0, name: maybe(string), verdict: .accepted, outcome: .exited, stdout: string())],
                    summary: CasesSummary(total: 1, run: 1, passed: 1, firstFailure: maybe { .init(step: string(), index: 0, verdict: .wrongAnswer) }))
            ]
        }
        report.cases = maybe { CasesSummary(total: int(), run: 0, passed: 0, maxMemoryBytes: 7) }
        return report
    }
}
