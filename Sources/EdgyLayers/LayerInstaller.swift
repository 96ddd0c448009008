import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import Glibc
import Logging

/// Runs a policy's install step for one manifest and seals what it wrote as a layer.
///
/// The step is a jail of the task's policy with three changes: its command is the policy's
/// `[dependencies] install`, its files are the manifest (and lockfile) only, and its network is
/// egress to the registry and `[dependencies] allow` only. It writes into a tmpfs of `layer_mib`
/// that edgyd mounts on the host and binds into the jail at the layer's mount point, so the layer
/// is bounded while it is written; on success it is copied to disk (root's, read-only to jails,
/// no special files) and renamed to its key in one step.
public struct LayerInstaller: Sendable {
    public let cache: LayerCache
    /// Registry name → URL, from edgyd's `dependency_registries`.
    public let registries: [String: String]
    /// The jail's host id range (see `JailHostConfiguration`), to give the scratch tmpfs to the jail's user.
    public let hostIDBase: UInt32
    public let run: @Sendable (JailRequest) async -> AttemptReport
    private let logger: Logger

    public init(
        cache: LayerCache, registries: [String: String], hostIDBase: UInt32, logger: Logger,
        run: @escaping @Sendable (JailRequest) async -> AttemptReport
    ) {
        self.cache = cache
        self.registries = registries
        self.hostIDBase = hostIDBase
        self.logger = logger
        self.run = run
    }

    /// Installs the layer `key` for `policy` from `manifest` (and `lockfile`).
    public func install(key: String, policy: Policy, manifest: TaskFile, lockfile: TaskFile?) async -> InstallResult {
        let deps = policy.dependencies
        let started = ContinuousClock.now
        func failed(_ error: String, log: String? = nil, retryable: Bool = false) -> InstallResult {
            let ms = Int((ContinuousClock.now - started).seconds * 1000)
            let report = DependencyReport(key: key, source: .failed, installMs: ms, log: log, error: error, retryable: retryable)
            return InstallResult(report: report, layerBytes: nil)
        }

        var registryURL = ""
        var registryRule: [String] = []
        if !deps.registry.isEmpty {
            guard let url = registries[deps.registry] else {
                return failed("the registry `\(deps.registry)` is not in edgyd's dependency_registries")
            }
            guard let endpoint = Self.endpoint(of: url) else { return failed("the registry URL \(url) has no host") }
            registryURL = url
            registryRule = ["\(endpoint.host):\(endpoint.port)"]
        }

        var install = policy
        do {
            install.limits = try policy.limits.applying(deps.limits)
        } catch {
            return failed("[dependencies] limits: \(error.description)")
        }
        install.network = Policy.Network(mode: .egress, allow: deps.allow + registryRule)
        let workdir = policy.run.workdir
        install.run.command = deps.install.map { argument in
            argument.replacingOccurrences(of: "{manifest}", with: workdir + "/" + deps.manifest)
                .replacingOccurrences(of: "{lockfile}", with: deps.lockfile.isEmpty ? "" : workdir + "/" + deps.lockfile)
                .replacingOccurrences(of: "{layer}", with: deps.mount)
                .replacingOccurrences(of: "{registry}", with: registryURL)
        }

        // The scratch tmpfs, owned by the jail's user as the host sees it.
        let scratch = cache.scratchDirectory + "/\(key)-\(UUID().uuidString)"
        guard mkdir(scratch, 0o700) == 0 else { return failed("cannot create \(scratch): \(LayerTree.errnoName())", retryable: true) }
        defer {
            umount2(scratch, Int32(MNT_DETACH))
            rmdir(scratch)
        }
        let owner = policy.identity.userNamespace ? hostIDBase + policy.identity.uid : policy.identity.uid
        let group = policy.identity.userNamespace ? hostIDBase + policy.identity.gid : policy.identity.gid
        let options = "size=\(deps.layerMib)m,nr_inodes=\(max(4096, deps.layerMib * 256)),mode=0755,uid=\(owner),gid=\(group)"
        guard mount("edgy-layer", scratch, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
            return failed("cannot mount the install step's tmpfs: \(LayerTree.errnoName())", retryable: true)
        }

        var files = [manifest]
        if let lockfile { files.append(lockfile) }
        var request = JailRequest(policy: install, files: files, limitsOverridden: true)
        // The install step gives back a layer, not files.
        request.outputPatterns = []
        request.extraMounts = [JailMount(source: scratch, destination: deps.mount, writable: true)]
        let report = await run(request)
        let log = Self.log(report)
        guard report.outcome == .exited, report.exitCode == 0 else {
            let why = Self.failure(report)
            // Only what may go away by itself is retried: an unreachable registry, or Edgy's own fault.
            let serviceFault = report.outcome.isServiceFault
            if !serviceFault, let endpoint = Self.endpoint(of: registryURL),
               !(await offThePool { Self.reachable(endpoint.host, endpoint.port) }) {
                return failed("the registry \(endpoint.host):\(endpoint.port) is unreachable (\(why))", log: log, retryable: true)
            }
            return failed("the install step \(why)", log: log, retryable: serviceFault)
        }

        let staging = cache.stagingPath(for: key)
        let copied: Result<UInt64, LayerTree.CopyError> = await offThePool {
            do throws(LayerTree.CopyError) { return .success(try LayerTree.copy(from: scratch, to: staging)) } catch { return .failure(error) }
        }
        let bytes: UInt64
        switch copied {
        case .success(let count): bytes = count
        case .failure(let error):
            LayerTree.remove(staging)
            return failed("sealing the layer failed: \(error.description)", log: log)
        }
        let final = cache.path(of: key)
        if rename(staging, final) != 0 {
            // Another host process (or an earlier run) sealed the same key: layers of a key are equal.
            LayerTree.remove(staging)
            guard access(final, F_OK) == 0 else { return failed("cannot seal the layer: \(LayerTree.errnoName())", log: log, retryable: true) }
        }
        let ms = Int((ContinuousClock.now - started).seconds * 1000)
        logger.info("dependency layer installed", metadata: ["key": "\(key)", "bytes": "\(bytes)", "ms": "\(ms)", "policy": "\(policy.name)"])
        return InstallResult(report: DependencyReport(key: key, source: .installed, installMs: ms, layerBytes: bytes, log: log), layerBytes: bytes)
    }

    /// The layer `key` from another host's archive in `shared`, sealed here; nil when there is
    /// none or it cannot be used (the caller installs it then).
    public func fetch(key: String, from shared: any SharedLayerStore) async -> InstallResult? {
        let started = ContinuousClock.now
        let archive: [UInt8]
        do {
            guard let stored = try await shared.layerArchive(key: key) else { return nil }
            archive = stored
        } catch {
            logger.warning("the shared layer store did not answer; installing", metadata: ["key": "\(key)", "error": "\(error)"])
            return nil
        }
        let staging = cache.stagingPath(for: key)
        let scratch = cache.stagingPath(for: key)
        let unpacked: Result<UInt64, LayerArchive.ArchiveError> = await offThePool {
            do throws(LayerArchive.ArchiveError) { return .success(try LayerArchive.unpack(archive, to: staging, scratch: scratch)) } catch { return .failure(error) }
        }
        guard case .success(let bytes) = unpacked else {
            LayerTree.remove(staging)
            if case .failure(let error) = unpacked {
                logger.error("a shared layer could not be unpacked; installing", metadata: ["key": "\(key)", "error": "\(error)"])
            }
            return nil
        }
        if rename(staging, cache.path(of: key)) != 0 {
            LayerTree.remove(staging)
            guard access(cache.path(of: key), F_OK) == 0 else { return nil }
        }
        let ms = Int((ContinuousClock.now - started).seconds * 1000)
        logger.info("dependency layer fetched from the shared store", metadata: ["key": "\(key)", "bytes": "\(bytes)", "ms": "\(ms)"])
        return InstallResult(report: DependencyReport(key: key, source: .fetched, installMs: ms, layerBytes: bytes), layerBytes: bytes)
    }

    /// Stores the sealed layer `key` in `shared` for other hosts (errors are logged: they only
    /// cost another host an install).
    public func share(key: String, to shared: any SharedLayerStore) async {
        let path = cache.path(of: key)
        let scratch = cache.stagingPath(for: key)
        let packed: Result<[UInt8], LayerArchive.ArchiveError> = await offThePool {
            do throws(LayerArchive.ArchiveError) { return .success(try LayerArchive.pack(path, scratch: scratch)) } catch { return .failure(error) }
        }
        do {
            try await shared.storeLayerArchive(key: key, archive: try packed.get())
            logger.info("dependency layer shared", metadata: ["key": "\(key)"])
        } catch {
            logger.warning("the layer could not be shared with other hosts", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    /// "exited 1", "ran out of wall time", ... for the report's error line.
    static func failure(_ report: AttemptReport) -> String {
        switch report.outcome {
        case .exited: return "exited \(report.exitCode ?? -1)"
        case .signaled: return "was killed by \(report.signalName ?? "a signal")"
        case .setupError: return "could not start: \(report.setup?.description ?? "setup error")"
        case .seccompViolation: return "was killed for the syscall \(report.seccompSyscall ?? "(unknown)"), which the policy does not allow"
        default: return "ended \(report.outcome.rawValue)"
        }
    }

    /// The end of stdout then stderr, at most `DependencyReport.maxLogBytes`.
    static func log(_ report: AttemptReport) -> String {
        let text = report.stdoutText + (report.stderr.isEmpty ? "" : report.stderrText)
        let bytes = Array(text.utf8)
        guard bytes.count > DependencyReport.maxLogBytes else { return text }
        return "…" + String(decoding: bytes.suffix(DependencyReport.maxLogBytes), as: UTF8.self)
    }

    /// Host and port of a registry URL (the scheme's port when none is given).
    static func endpoint(of url: String) -> (host: String, port: Int)? {
        guard let parsed = URLComponents(string: url), let host = parsed.host, !host.isEmpty else { return nil }
        return (host, parsed.port ?? (parsed.scheme == "https" ? 443 : 80))
    }

    /// Whether a TCP connection to `host:port` opens within two seconds, from edgyd itself.
    static func reachable(_ host: String, _ port: Int) -> Bool {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return false }
        defer { freeaddrinfo(result) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard Glibc.poll(&poll, 1, 2000) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0
    }
}

/// Blocking file and socket work (a layer's copy, a connect with a timeout), off Swift's
/// cooperative pool.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}
