import EdgyPolicy
import Foundation

/// A JSON create-task body refused: not JSON at all (`field` nil), or a field that is wrong.
public struct TaskJSONError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// The field at fault, e.g. `files[2].mode`, `limits.memory_mib`; nil when the body is not a JSON object.
    public var field: String?

    public init(_ message: String, field: String? = nil) {
        self.message = message
        self.field = field
    }

    public var description: String { message + (field.map { " (\($0))" } ?? "") }
}

/// `POST /v1/tasks` as JSON. Unknown keys are refused, so a typo never silently drops a field;
/// numbers outside their field's range are refused naming the field.
public struct TaskBody: Decodable, Sendable {
    public var name: String?
    public var policy: String?
    public var input: String?
    public var files: [FileBody]?
    public var command: [String]?
    public var stdin: String?
    public var stdinBase64: String?
    public var env: [String: String]?
    public var limits: LimitsBody?
    public var maxAttempts: Int?
    /// Packages, written as the policy's manifest format takes them (`requests==2.32.3`, `left-pad@1.3.0`).
    public var dependencies: [String]?
    /// Output patterns: a subset of the policy's `[outputs] paths` (empty: collect nothing).
    public var outputs: [String]?
    /// A multi-step task: each step its own jail, all in one workspace.
    public var steps: [StepBody]?
    /// Where the finished task is POSTed (checked by the API against the operator's allowlist).
    public var callbackURL: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, policy, input, files, command, stdin, env, limits, dependencies, outputs, steps
        case stdinBase64 = "stdin_base64", maxAttempts = "max_attempts", callbackURL = "callback_url"
    }

    /// The body, or the first field it gets wrong.
    public static func decode(_ bytes: [UInt8]) throws(TaskJSONError) -> TaskBody {
        do {
            return try JSONDecoder().decode(TaskBody.self, from: Data(bytes))
        } catch {
            throw TaskJSONError.describing(error)
        }
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        policy = try c.decodeIfPresent(String.self, forKey: .policy)
        input = try c.decodeIfPresent(String.self, forKey: .input)
        files = try c.decodeIfPresent([FileBody].self, forKey: .files)
        command = try c.decodeIfPresent([String].self, forKey: .command)
        stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
        stdinBase64 = try c.decodeIfPresent(String.self, forKey: .stdinBase64)
        env = try c.decodeIfPresent([String: String].self, forKey: .env)
        limits = try c.decodeIfPresent(LimitsBody.self, forKey: .limits)
        maxAttempts = try wholeNumber(c, .maxAttempts, "max_attempts must be a whole number")
        dependencies = try c.decodeIfPresent([String].self, forKey: .dependencies)
        outputs = try c.decodeIfPresent([String].self, forKey: .outputs)
        steps = try c.decodeIfPresent([StepBody].self, forKey: .steps)
        callbackURL = try c.decodeIfPresent(String.self, forKey: .callbackURL)
    }
}

/// One step of `steps`. Checked against the policy by the API (`steps[2].command`).
public struct StepBody: Decodable, Sendable {
    public enum Kind: String, Decodable, Sendable { case run, dependencies }
    public var name: String
    public var type: Kind
    public var command: [String]?
    public var stdin: String?
    public var limits: LimitsBody?
    public var continueOnFailure: Bool
    public var stopOnFirstFailure: Bool
    public var cases: [CaseBody]?
    /// Defaults for the step's cases.
    public var comparator: ComparatorName?
    public var tolerance: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, type, command, stdin, limits, cases, comparator, tolerance
        case continueOnFailure = "continue_on_failure", stopOnFirstFailure = "stop_on_first_failure"
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try rejectNulls(c)
        name = try c.decode(String.self, forKey: .name)
        type = try c.decodeIfPresent(Kind.self, forKey: .type) ?? .run
        command = try c.decodeIfPresent([String].self, forKey: .command)
        stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
        limits = try c.decodeIfPresent(LimitsBody.self, forKey: .limits)
        continueOnFailure = try c.decodeIfPresent(Bool.self, forKey: .continueOnFailure) ?? false
        stopOnFirstFailure = try c.decodeIfPresent(Bool.self, forKey: .stopOnFirstFailure) ?? false
        cases = try c.decodeIfPresent([CaseBody].self, forKey: .cases)
        comparator = try c.decodeIfPresent(ComparatorName.self, forKey: .comparator)
        tolerance = try c.decodeIfPresent(Double.self, forKey: .tolerance)
    }
}

extension StepBody {
    /// The `steps` array of a multipart field, its errors' fields under `steps`.
    public static func decodeList(_ bytes: [UInt8]) throws(TaskJSONError) -> [StepBody] {
        do {
            return try JSONDecoder().decode([StepBody].self, from: Data(bytes))
        } catch {
            let described = TaskJSONError.describing(error)
            guard let field = described.field else { throw TaskJSONError("steps must be a JSON array of step objects", field: "steps") }
            throw TaskJSONError(described.message, field: "steps\(field.hasPrefix("[") ? "" : ".")\(field)")
        }
    }
}

/// `exact`, `trim`, `float` or `regex`.
public enum ComparatorName: String, Decodable, Sendable { case exact, trim, float, regex }

/// One case of a step: stdin, and the stdout it must produce.
public struct CaseBody: Decodable, Sendable {
    public var name: String?
    public var stdin: String?
    public var expectedStdout: String
    public var comparator: ComparatorName?
    public var tolerance: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, stdin, comparator, tolerance
        case expectedStdout = "expected_stdout"
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try rejectNulls(c)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
        expectedStdout = try c.decode(String.self, forKey: .expectedStdout)
        comparator = try c.decodeIfPresent(ComparatorName.self, forKey: .comparator)
        tolerance = try c.decodeIfPresent(Double.self, forKey: .tolerance)
    }
}

public struct FileBody: Decodable, Sendable {
    public enum Encoding: String, Decodable, Sendable { case utf8, base64 }
    public var path: String
    public var content: String
    public var encoding: Encoding
    /// Permission bits only (0 to 0o777).
    public var mode: UInt32
    /// A stored blob's lower-case sha256 hex (from `"blob": "sha256:…"`), instead of `content`.
    public var blob: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case path, content, encoding, mode, blob }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        content = try c.decodeIfPresent(String.self, forKey: .content) ?? ""
        encoding = try c.decodeIfPresent(Encoding.self, forKey: .encoding) ?? .utf8
        mode = try Self.decodeMode(c)
        if let text = try c.decodeIfPresent(String.self, forKey: .blob) {
            guard let sha256 = Self.blobDigest(text) else {
                throw DecodingError.dataCorruptedError(forKey: .blob, in: c, debugDescription: "blob must be \"sha256:\" and 64 lower-case hexadecimal digits")
            }
            guard !c.contains(.content), !c.contains(.encoding) else {
                throw DecodingError.dataCorruptedError(forKey: .blob, in: c, debugDescription: "give content or blob, not both")
            }
            blob = sha256
        }
    }

    /// The hex of `sha256:<64 lower-case hex digits>`.
    static func blobDigest(_ text: String) -> String? {
        let hex = text.utf8
        guard text.hasPrefix("sha256:"), hex.count == 71,
              hex.dropFirst(7).allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        return String(text.dropFirst(7))
    }

    /// 493 or "0755"/"755"/"0o755": permission bits, as chmod takes them.
    private static func decodeMode(_ c: KeyedDecodingContainer<CodingKeys>) throws -> UInt32 {
        let wrong = { DecodingError.dataCorruptedError(forKey: .mode, in: c, debugDescription: "mode must be permission bits from 0 to 0o777: octal text like \"0755\" or a number") }
        guard c.contains(.mode), try !c.decodeNil(forKey: .mode) else { return 0o644 }
        if let text = try? c.decode(String.self, forKey: .mode) {
            let digits = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
            guard digits.utf8.count <= 4, let parsed = UInt32(digits, radix: 8), parsed <= 0o777 else { throw wrong() }
            return parsed
        }
        guard let number = try? c.decode(Double.self, forKey: .mode), number >= 0, number <= 0o777, number.rounded() == number else { throw wrong() }
        return UInt32(number)
    }
}

/// `limits`: LimitOverrides with its TOML key names, unknown keys refused, every value positive.
public struct LimitsBody: Decodable, Sendable {
    public var overrides: LimitOverrides

    static let keys = LimitOverrides.keys
    static let numeric = Set(LimitOverrides.keys(of: .wholeNumber) + LimitOverrides.keys(of: .number))
    static let fractional = Set(LimitOverrides.keys(of: .number))

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: Self.keys)
        let c = try decoder.container(keyedBy: AnyKey.self)
        for key in c.allKeys where Self.numeric.contains(key.stringValue) {
            // Limits only tighten a policy: zero, negative or astronomically large values are wrong on
            // their face, whatever the policy says. Checked here because Foundation reports a number
            // that does not fit an Int without naming its key.
            let fractional = Self.fractional.contains(key.stringValue)
            guard let value = try? c.decode(Double.self, forKey: key), value > 0, value <= 1e15, fractional || value.rounded() == value else {
                let kind = fractional ? "a positive number" : "a positive whole number"
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(key.stringValue) must be \(kind) no larger than 1e15")
            }
        }
        overrides = try LimitOverrides(from: decoder)
    }

    /// The `limits` object of a multipart field.
    public static func decode(_ bytes: [UInt8]) throws(TaskJSONError) -> LimitOverrides {
        do {
            return try JSONDecoder().decode(LimitsBody.self, from: Data(bytes)).overrides
        } catch {
            var described = TaskJSONError.describing(error)
            described.field = described.field.map { "limits.\($0)" } ?? "limits"
            throw described
        }
    }
}

/// An integer field, refused naming its key when it is fractional or beyond ±1e15 (Foundation's own
/// error for a number that does not fit an Int names no key).
func wholeNumber<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ key: Key, _ message: String) throws -> Int? {
    guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
    let value = try c.decode(Double.self, forKey: key)
    guard value.rounded() == value, abs(value) <= 1e15 else {
        throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: message)
    }
    return Int(value)
}

/// A key given as `null` is refused, naming it: leaving it out is how a field is not given.
func rejectNulls<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>) throws {
    for key in c.allKeys where try c.decodeNil(forKey: key) {
        throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(key.stringValue) must not be null; leave it out instead")
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

struct UnknownKey: Error {
    var path: String
}

func rejectUnknownKeys(_ decoder: any Decoder, known: [String]) throws {
    let container = try decoder.container(keyedBy: AnyKey.self)
    if let unknown = container.allKeys.first(where: { !known.contains($0.stringValue) }) {
        throw UnknownKey(path: TaskJSONError.fieldPath(decoder.codingPath + [unknown]))
    }
}

extension TaskJSONError {
    /// `files[2].mode` for a coding path.
    public static func fieldPath(_ path: [any CodingKey]) -> String {
        var out = ""
        for key in path {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out
    }

    /// A decoding failure as a message naming the field.
    public static func describing(_ error: any Error) -> TaskJSONError {
        switch error {
        case let error as UnknownKey:
            return TaskJSONError("unknown field \(error.path)", field: error.path)
        case let error as TaskJSONError:
            return error
        case DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty:
            return TaskJSONError("the body must be a JSON object")
        case DecodingError.typeMismatch(let type, let context):
            return TaskJSONError("expected \(typeName(type)): \(context.debugDescription)", field: fieldPath(context.codingPath))
        case DecodingError.valueNotFound(let type, let context):
            return TaskJSONError("expected \(typeName(type)), found null", field: fieldPath(context.codingPath))
        case DecodingError.keyNotFound(let key, let context):
            let path = fieldPath(context.codingPath + [key])
            return TaskJSONError("\(path) is required", field: path)
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            return TaskJSONError(context.debugDescription, field: fieldPath(context.codingPath))
        default:
            return TaskJSONError("the body is not valid JSON")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is UInt32.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        case is [String].Type: "an array of strings"
        default: "\(type)".lowercased()
        }
    }
}
