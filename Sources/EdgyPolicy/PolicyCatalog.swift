import Synchronization

/// The daemon's live view of its policy directory. Lookups are cheap; `reload()` swaps the whole
/// set at once, so an attempt keeps the policy version it started with (it holds the value).
public final class PolicyCatalog: Sendable {
    public let directory: String
    private let state: Mutex<[String: LoadedPolicy]>

    private init(directory: String, policies: [String: LoadedPolicy]) {
        self.directory = directory
        self.state = Mutex(policies)
    }

    /// Loads every policy in `directory`; files with errors are left out and their diagnostics returned.
    public static func load(directory: String) -> (catalog: PolicyCatalog, diagnostics: [PolicyDiagnostic]) {
        let (policies, diagnostics) = PolicyDirectory(path: directory).loadAll()
        return (PolicyCatalog(directory: directory, policies: policies), diagnostics)
    }

    /// A catalog of given policies, for tests and embedding.
    public static func fixed(_ policies: [LoadedPolicy], directory: String = "") -> PolicyCatalog {
        PolicyCatalog(directory: directory, policies: Dictionary(policies.map { ($0.policy.name, $0) }, uniquingKeysWith: { $1 }))
    }

    public func policy(named name: String) -> LoadedPolicy? {
        state.withLock { $0[name] }
    }

    /// All policies, by name.
    public var all: [LoadedPolicy] {
        state.withLock { $0.values.sorted { $0.policy.name < $1.policy.name } }
    }

    /// Re-reads the directory. Policies whose files now have errors keep their previous version,
    /// so a typo never takes a policy away from running tasks' retries.
    @discardableResult
    public func reload() -> [PolicyDiagnostic] {
        let (fresh, diagnostics) = PolicyDirectory(path: directory).loadAll()
        state.withLock { current in
            var next = fresh
            let broken = Set(diagnostics.filter { $0.severity == .error }.map { policyName(ofFile: $0.file) })
            for (name, old) in current where next[name] == nil && broken.contains(name) {
                next[name] = old
            }
            current = next
        }
        return diagnostics
    }
}

/// "python" for "policies/python.toml".
func policyName(ofFile path: String) -> String {
    let file = path.split(separator: "/").last.map(String.init) ?? path
    return file.hasSuffix(".toml") ? String(file.dropLast(5)) : file
}
