// TEMPORARY: delete at merge. Stands in for the real PolicyLoader (another branch) so that
// PolicyExplainCommand compiles here; it declares exactly the API that command uses.
public struct PolicyLoadError: Error, Sendable {}
public struct LoadedPolicy: Sendable { public let policy: Policy }
public enum PolicyLoader {
    public static func load(name: String, directory: String) throws(PolicyLoadError) -> LoadedPolicy { throw PolicyLoadError() }
}
