import TOMLKit

/// A TOML value copied out of TOMLKit into plain Swift, so the walk below is pure and Sendable.
indirect enum TOMLNode: Sendable {
    case string(String), int(Int), double(Double), bool(Bool)
    case array([TOMLNode]), table([String: TOMLNode])
    /// Dates and times: never valid in a policy; the type name is kept for the message.
    case other(String)

    init(_ value: any TOMLValueConvertible) {
        switch value.type {
        case .string: self = .string(value.string ?? "")
        case .int: self = .int(value.int ?? 0)
        case .double: self = .double(value.double ?? 0)
        case .bool: self = .bool(value.bool ?? false)
        case .array: self = .array((value.array.map(Array.init) ?? []).map { TOMLNode($0) })
        case .table:
            var out: [String: TOMLNode] = [:]
            if let table = value.table { for (k, v) in table { out[k] = TOMLNode(v) } }
            self = .table(out)
        default: self = .other(value.type.rawValue)
        }
    }

    /// How the value reads in a message: `"lots"`, `5`, `an array`.
    var shown: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        case .array: "an array"
        case .table: "a table"
        case .other(let type): "a \(type)"
        }
    }
}

/// Where a key of the effective policy was set: for errors and warnings found after `extends`
/// has been applied.
struct Origin: Sendable, Hashable {
    var file: String
    var line: Int?
}

/// One file decoded on its own: the values it sets (over defaults) and where it set them.
struct DecodedFile: Sendable {
    var policy: Policy
    /// Dotted key ("limits.memory_mib", "run.env.PATH", "mounts") → where the file sets it.
    var origins: [String: Origin]
    var extends: String?
    var extendsLine: Int?
    var diagnostics: [PolicyDiagnostic]
}
