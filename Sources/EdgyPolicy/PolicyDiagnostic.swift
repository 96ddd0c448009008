/// One finding about a policy file: an error that stops it loading, or a warning about a
/// dangerous grant or a contradiction.
///
/// Rendered as `FILE:LINE: KEY: MESSAGE`, omitting the parts that are unknown, so editors and
/// terminals can jump to the line (every error names file, line and key).
public struct PolicyDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var severity: Severity
    public var file: String
    public var line: Int?
    /// The key as the operator wrote it, with its table: `[limits] memory_mib`, `description`.
    public var key: String?
    public var message: String

    public init(severity: Severity = .error, file: String, line: Int? = nil, key: String? = nil, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        out += ": "
        if severity == .warning { out += "warning: " }
        if let key { out += "\(key): " }
        return out + message
    }
}

/// A policy file that did not load: every error found in it (and in the files it extends).
public struct PolicyLoadError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]

    public init(diagnostics: [PolicyDiagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// An effective policy with the warnings found while loading it.
public struct LoadedPolicy: Sendable {
    public let policy: Policy
    public let warnings: [PolicyDiagnostic]
    /// The file it was loaded from, as given to the loader.
    public let path: String
    /// `policy.digest`, computed once: workers name it in every attempt's report.
    public let digest: String

    public init(policy: Policy, warnings: [PolicyDiagnostic], path: String) {
        self.policy = policy
        self.digest = policy.digest
        self.warnings = warnings
        self.path = path
    }
}
