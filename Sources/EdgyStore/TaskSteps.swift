import EdgyModel
import EdgyPolicy
import Foundation

/// One step of a multi-step task, as validated: every step is its own jail, and all of a task's
/// steps share its workspace (what one writes, the next finds).
public struct StepSpec: Sendable, Hashable, Codable {
    public var name: String
    public var kind: StepReport.Kind
    /// Replaces the policy's command, where the policy allows it; nil runs the policy's.
    public var command: [String]?
    public var stdin: [UInt8]
    /// Over the task's own overrides, key by key; tighten-only against the policy, like them.
    public var limits: LimitOverrides
    /// A failure does not stop the task (it still fails it).
    public var continueOnFailure: Bool
    /// The step's cases stop at the first that is not accepted.
    public var stopOnFirstFailure: Bool
    /// Run once per case (`kind == .cases`).
    public var cases: [CaseSpec]

    public init(
        name: String, kind: StepReport.Kind = .run, command: [String]? = nil, stdin: [UInt8] = [],
        limits: LimitOverrides = LimitOverrides(), continueOnFailure: Bool = false, stopOnFirstFailure: Bool = false,
        cases: [CaseSpec] = []
    ) {
        self.name = name
        self.kind = kind
        self.command = command
        self.stdin = stdin
        self.limits = limits
        self.continueOnFailure = continueOnFailure
        self.stopOnFirstFailure = stopOnFirstFailure
        self.cases = cases
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, command, stdin, limits, cases
        case continueOnFailure = "continue_on_failure"
        case stopOnFirstFailure = "stop_on_first_failure"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decode(StepReport.Kind.self, forKey: .kind)
        command = try c.decodeIfPresent([String].self, forKey: .command)
        stdin = try decodeBytes(c, .stdin)
        limits = try c.decode(LimitOverrides.self, forKey: .limits)
        continueOnFailure = try c.decode(Bool.self, forKey: .continueOnFailure)
        stopOnFirstFailure = try c.decode(Bool.self, forKey: .stopOnFirstFailure)
        cases = try c.decode([CaseSpec].self, forKey: .cases)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(command, forKey: .command)
        try c.encode(Data(stdin).base64EncodedString(), forKey: .stdin)
        try c.encode(limits, forKey: .limits)
        try c.encode(continueOnFailure, forKey: .continueOnFailure)
        try c.encode(stopOnFirstFailure, forKey: .stopOnFirstFailure)
        try c.encode(cases, forKey: .cases)
    }

    /// Bytes the step keeps for its tenant: stdin, and every case's stdin and expected output.
    public var storedBytes: Int { cases.reduce(stdin.count) { $0 + $1.stdin.count + $1.expectedStdout.count } }
}

/// One input of a cases step, and what its output must be.
public struct CaseSpec: Sendable, Hashable, Codable {
    public var name: String?
    public var stdin: [UInt8]
    public var expectedStdout: [UInt8]
    public var comparator: CaseComparator

    public init(name: String? = nil, stdin: [UInt8] = [], expectedStdout: [UInt8], comparator: CaseComparator = .exact) {
        self.name = name
        self.stdin = stdin
        self.expectedStdout = expectedStdout
        self.comparator = comparator
    }

    enum CodingKeys: String, CodingKey {
        case name, stdin, comparator
        case expectedStdout = "expected_stdout"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        stdin = try decodeBytes(c, .stdin)
        expectedStdout = try decodeBytes(c, .expectedStdout)
        comparator = try c.decode(CaseComparator.self, forKey: .comparator)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encode(Data(stdin).base64EncodedString(), forKey: .stdin)
        try c.encode(Data(expectedStdout).base64EncodedString(), forKey: .expectedStdout)
        try c.encode(comparator, forKey: .comparator)
    }
}

/// Stored bytes are base64 text: a JSON array of numbers would take four times the room.
private func decodeBytes<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ key: Key) throws -> [UInt8] {
    guard let data = Data(base64Encoded: try c.decode(String.self, forKey: key)) else {
        throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not base64")
    }
    return Array(data)
}
