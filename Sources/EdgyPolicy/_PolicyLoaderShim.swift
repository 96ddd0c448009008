// TEMPORARY: replaced by the policy branch at merge.
public struct PolicyDiagnostic: Error, Sendable, Hashable, CustomStringConvertible { public var description: String }
public struct PolicyLoadError: Error, Sendable, CustomStringConvertible { public var diagnostics: [PolicyDiagnostic]; public var description: String { "shim" } }
public struct LoadedPolicy: Sendable { public let policy: Policy; public let warnings: [PolicyDiagnostic]; public let path: String; public var digest: String { "" } }
public enum PolicyLoader {
    public static func load(file: String) throws(PolicyLoadError) -> LoadedPolicy { throw PolicyLoadError(diagnostics: []) }
    public static func load(name: String, directory: String) throws(PolicyLoadError) -> LoadedPolicy { throw PolicyLoadError(diagnostics: []) }
}
