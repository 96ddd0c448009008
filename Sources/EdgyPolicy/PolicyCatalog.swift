import Synchronization

/// The daemon's live view of its policy directory. Lookups are cheap; `reload()` swaps the whole
/// set at once, so an attempt keeps the policy version it started with (it holds the value).
public final class PolicyCatalog: Sendable {
    public let directory: String
    private let state: Mutex<[String: LoadedPolicy]>
    /// Why this host cannot run a policy (egress without nftables, say): such policies are left
    /// out, at load and at every reload, with an error naming the file and the reason.
    public typealias Refusal = @Sendable (Policy) -> String?
    private let refusal = Mutex<Refusal?>(nil)

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

    /// Leaves out, now and at every reload, the policies `refusal` gives a reason for; returns
    /// an error per policy left out.
    public func refuse(_ refusal: @escaping Refusal) -> [PolicyDiagnostic] {
        self.refusal.withLock { $0 = refusal }
        return state.withLock { current in Self.applying(refusal, to: &current) }
    }

    private static func applying(_ refusal: Refusal?, to policies: inout [String: LoadedPolicy]) -> [PolicyDiagnostic] {
        guard let refusal else { return [] }
        var out: [PolicyDiagnostic] = []
        for (name, loaded) in policies.sorted(by: { $0.key < $1.key }) {
            guard let reason = refusal(loaded.policy) else { continue }
            policies[name] = nil
            out.append(PolicyDiagnostic(file: loaded.path, message: "not loaded: \(reason)"))
        }
        return out
    }

    /// Re-reads the directory. Policies whose files now have errors keep their previous version,
    /// so a typo never takes a policy away from running tasks' retries.
    @discardableResult
    public func reload() -> [PolicyDiagnostic] {
        var (fresh, diagnostics) = PolicyDirectory(path: directory).loadAll()
        diagnostics += Self.applying(refusal.withLock { $0 }, to: &fresh)
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
