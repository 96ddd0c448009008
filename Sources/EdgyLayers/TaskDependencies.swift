import EdgyJail
import EdgyModel
import EdgyPolicy

/// A worker's view of dependencies: for an attempt whose task carries its policy's manifest,
/// the layer to mount (installed now, found cached, or waited for) or why there is none.
public struct TaskDependencies: Sendable {
    public let cache: LayerCache
    public let installer: LayerInstaller
    private let runtimes = RuntimeVersions()

    public init(cache: LayerCache, installer: LayerInstaller) {
        self.cache = cache
        self.installer = installer
    }

    /// The layer for a task with `files` under `policy` (whose loaded digest is `policyDigest`),
    /// or nil when the policy takes no dependencies or the task brings no manifest.
    public func acquire(policy: Policy, policyDigest: String, files: [TaskFile]) async -> LayerAcquisition? {
        let deps = policy.dependencies
        guard deps.enabled, let manifest = files.first(where: { $0.path == deps.manifest }) else { return nil }
        let lockfile = deps.lockfile.isEmpty ? nil : files.first { $0.path == deps.lockfile }
        guard let runtime = runtimes.version(of: deps.runtime) else {
            let report = DependencyReport(key: "", source: .failed, error: "the runtime \(deps.runtime) of policy \(policy.name) cannot be read", retryable: false)
            return .failed(report, retryable: false)
        }
        let key = LayerKey.compute(manifest: manifest.contents, lockfile: lockfile?.contents, policyDigest: policyDigest, runtimeVersion: runtime)
        return await cache.acquire(key: key) { [installer] in
            await installer.install(key: key, policy: policy, manifest: manifest, lockfile: lockfile)
        }
    }

    /// `request` with the layer bound read-only at the policy's mount point and its environment.
    public static func mounting(_ lease: LayerLease, into request: JailRequest) -> JailRequest {
        var request = request
        let deps = request.policy.dependencies
        request.extraMounts.append(JailMount(source: lease.path, destination: deps.mount))
        // The task's own variables (task_env) win over the policy's layer variables.
        request.extraEnvironment = deps.env.merging(request.extraEnvironment) { _, task in task }
        return request
    }
}
