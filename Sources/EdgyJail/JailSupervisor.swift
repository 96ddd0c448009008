import CEdgyJail
import EdgyCgroup
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgySystem
import Glibc
import Synchronization
import SystemPackage

/// Which stream a chunk of live output came from.
public enum OutputStreamKind: String, Sendable {
    case stdout, stderr
}

/// Fails at start when the host cannot jail anything.
public struct JailSetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Runs attempts: policy + task → plan → spawn → supervise → `AttemptReport`.
///
/// Many attempts may run at once from one supervisor; each has its own thread, cgroup, pipes and
/// deadline, and they share nothing mutable but the pool.
///
/// With `host.poolSize > 0` the supervisor keeps that many jails per shape (namespaces and cgroup
/// limits) cloned ahead of demand and parked at their gate (`JailPool`); a request takes one and
/// only writes its plan and opens the gate. Call `shutdown()` (or drop the supervisor) to kill them.
public final class JailSupervisor: Sendable {
    public let host: JailHostConfiguration
    let core: SupervisorCore

    /// - Parameters:
    ///   - cgroups: where each attempt's cgroup is created; nil runs without cgroup limits
    ///     (memory and pids are then unenforced, which `edgyd` never does).
    /// - Throws: `JailSetupError` when the staging directory cannot be created.
    public init(host: JailHostConfiguration = JailHostConfiguration(), cgroups: CgroupManager?) throws(JailSetupError) {
        self.host = host
        // A workload that closes its stdin early must not take the supervisor down with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        var current = ""
        for component in host.stagingRoot.split(separator: "/") {
            // Two String appends: `String + Substring` goes through a generic the runtime
            // instantiates at the first call, which `edgy run` pays at every start.
            current += "/"
            current += String(component)
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw JailSetupError(description: "cannot create staging directory \(current): \(errnoName(errno))")
            }
        }
        do {
            core = try SupervisorCore(host: host, cgroups: cgroups)
        } catch {
            throw JailSetupError(description: "cannot create the jail pool: \(errnoName(error.rawValue))")
        }
    }

    deinit {
        shutdown()
    }

    /// Kills and reaps every parked jail and removes their cgroups; later attempts spawn on demand.
    /// Then removes the egress table and stops the resolver. Idempotent. Call it after the
    /// attempts in flight have finished: jails started from the pool die with the pool's thread
    /// (PR_SET_PDEATHSIG).
    public func shutdown() {
        core.pool?.shutdown()
        if case .success(let network)? = core.network { network.shutdown() }
    }

    /// Why egress policies cannot run here (the host lacks nftables or veth, or egress is not
    /// configured), or nil when they can.
    public var egressUnavailable: String? {
        switch core.network {
        case nil: "egress is not configured"
        case .failure(let error)?: error.description
        case .success?: nil
        }
    }

    /// The egress host side, when there is one (for tests and diagnostics).
    public var egressHost: EgressHost? {
        if case .success(let network)? = core.network { network } else { nil }
    }

    /// The fork server jails are cloned by, when `host.forkServer` names one.
    public var forkServer: ForkServer? { core.forkServer }

    /// How many jails are parked at their gate right now.
    public var parkedJails: Int { core.pool?.parkedCount ?? 0 }

    /// Shapes the pool keeps warm now (at most 8, least recently used evicted first).
    public var warmShapes: Int { core.pool?.warmShapes.count ?? 0 }

    /// Tears down parked jails that bind `source` (see `JailRequest.extraMounts`) and stops
    /// refilling their shapes: call it before the directory goes away.
    public func forgetParkedJails(mounting source: String) {
        core.pool?.forget(mounting: source)
    }

    /// Waits until the pool's background work (refills: clone, cgroup mkdir and attach, the
    /// filesystem build; removal of finished cgroups) is done, for up to `timeoutMs`. True if it
    /// settled (always, without a pool). For warm-up, and for benchmarks that time other tools
    /// without the pool's cgroup v1 writes contending with their forks.
    public func waitUntilPoolSettled(timeoutMs: Int = 2000) async -> Bool {
        guard let pool = core.pool else { return true }
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while !pool.isSettled {
            if monotonicNanos() >= deadline { return false }
            try? await Task.sleep(for: .microseconds(200))
        }
        return true
    }

    /// Runs one attempt to its end and reports it. Never throws: every ending is a report.
    /// Cancelling the calling task kills the jail at once; the report says `cancelled`.
    ///
    /// - Parameter onOutput: receives each kept chunk of stdout/stderr as it arrives (on the
    ///   jail's thread; keep it short).
    public func run(
        _ request: JailRequest,
        onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)? = nil
    ) async -> AttemptReport {
        let cancelFD: Int32
        do {
            cancelFD = try makeEventFD()
        } catch {
            var report = AttemptReport(outcome: .setupError, policyName: request.policy.name, policyDigest: request.policyDigest)
            report.setup = SpawnFailure(stage: EDGY_STAGE_EVENTFD, errno: error.rawValue).setupFailure
            return report
        }
        defer { closeDescriptor(cancelFD) }
        // The thread captures the core, not `self`: dropping the supervisor right after `run`
        // returns must shut the pool down then and there, not when this thread lets go.
        let core = self.core
        return await withTaskCancellationHandler {
            await onBackgroundThread {
                var attempt = Attempt(supervisor: core, request: request, cancelFD: cancelFD, onOutput: onOutput)
                return attempt.run()
            }
        } onCancel: {
            signalEventFD(cancelFD)
        }
    }
}

/// What attempts share: configuration, the cgroup manager and the pool.
final class SupervisorCore: Sendable {
    let host: JailHostConfiguration
    let cgroups: CgroupManager?
    let lastCap: UInt32
    let pool: JailPool?
    /// The filesystem plans of recent attempts (`FilesystemPlanCache`).
    let filesystemPlans = FilesystemPlanCache()
    /// The egress host side, or why this host has none; nil when not configured.
    let network: EgressAvailability?
    /// Where jails are cloned, when not in process.
    let forkServer: ForkServer?

    init(host: JailHostConfiguration, cgroups: CgroupManager?) throws(Errno) {
        self.host = host
        forkServer = host.forkServer.map { ForkServer.shared(executable: $0) }
        self.cgroups = cgroups
        self.lastCap = UInt32(edgy_last_cap())
        network = host.egress.map { configuration in
            do throws(EgressSetupError) { return .success(try EgressHost(configuration)) } catch { return .failure(error) }
        }
        pool = host.poolSize > 0
            ? JailPool(host: host, cgroups: cgroups, network: network, forkServer: forkServer, size: host.poolSize) : nil
    }

}
