import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyStore

/// A worker's view of dependencies: for an attempt whose task carries its policy's manifest,
/// the layer to mount (installed now, found cached, or waited for) or why there is none.
public struct TaskDependencies: Sendable {
    public let cache: LayerCache
    public let installer: LayerInstaller
    /// The store hosts share (PostgreSQL): layers built elsewhere are fetched from it, and layers
    /// built here are put there. Nil on a single host.
    public let shared: (any SharedLayerStore)?
    private let runtimes = RuntimeVersions()

    public init(cache: LayerCache, installer: LayerInstaller, shared: (any SharedLayerStore)? = nil) {
        self.cache = cache
        self.installer = installer
        self.shared = shared
    }

    /// The layer for a task with `files` under `policy` (whose loaded digest is `policyDigest`),
    /// or nil when the policy takes no dependencies or the task brings no manifest.
    public func acquire(policy: Policy, policyDigest: String, files: [TaskFile]) async -> LayerAcquisition? {
        let deps = policy.dependencies
        guard deps.enabled, let manifest = files.first(where: { $0.path == deps.manifest }) else { return nil }
        let lockfile = deps.lockfile.isEmpty ? nil : files.first { $0.path == deps.lockfile }
        guard let runtime = runtimes.version(of: deps.runtime) else {
            let report = DependencyReport(key: "", source: .failed, error: "the runtime \(deps.runtime) of policy \(policy.name) cannot be read", retryable: false)
            return .failed(report)
        }
        let key = LayerKey.compute(manifest: manifest.contents, lockfile: lockfile?.contents, policyDigest: policyDigest, runtimeVersion: runtime)
        return await cache.acquire(key: key) { [installer, shared] in
            if let shared, let fetched = await installer.fetch(key: key, from: shared) { return fetched }
            let result = await installer.install(key: key, policy: policy, manifest: manifest, lockfile: lockfile)
            if result.layerBytes != nil, let shared {
                // In the background: the attempt that installed it does not wait for the upload.
                Task.detached { await installer.share(key: key, to: shared) }
            }
            return result
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
