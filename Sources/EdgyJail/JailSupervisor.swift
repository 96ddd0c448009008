import CEdgyJail
import EdgyCgroup
import EdgyModel
import EdgyPolicy
import EdgySeccomp
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
            current += "/" + component
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
        core.pool?.shutdown()
    }

    /// Kills and reaps every parked jail and removes their cgroups; later attempts spawn on demand.
    /// Idempotent. Call it after the attempts in flight have finished: jails started from the
    /// pool die with the pool's thread (PR_SET_PDEATHSIG).
    public func shutdown() {
        core.pool?.shutdown()
    }

    /// How many jails are parked at their gate right now.
    public var parkedJails: Int { core.pool?.parkedCount ?? 0 }

    /// Shapes the pool keeps warm now (at most 8, least recently used evicted first).
    public var warmShapes: Int { core.pool?.warmShapes.count ?? 0 }

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
            report.setup = SetupFailure(stage: "eventfd", errno: errnoName(error.rawValue), detail: nil)
            return report
        }
        defer { closeDescriptor(cancelFD) }
        let id = core.nextSerial()
        // The thread captures the core, not `self`: dropping the supervisor right after `run`
        // returns must shut the pool down then and there, not when this thread lets go.
        let core = self.core
        return await withTaskCancellationHandler {
            await onBackgroundThread {
                var attempt = Attempt(supervisor: core, request: request, cancelFD: cancelFD, onOutput: onOutput, serial: id)
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
    private let sequence: Atomic<UInt64>

    init(host: JailHostConfiguration, cgroups: CgroupManager?) throws(Errno) {
        self.host = host
        self.cgroups = cgroups
        self.lastCap = UInt32(edgy_last_cap())
        self.sequence = Atomic<UInt64>(0)
        pool = host.poolSize > 0 ? JailPool(host: host, cgroups: cgroups, size: host.poolSize) : nil
    }

    func nextSerial() -> UInt64 { sequence.add(1, ordering: .relaxed).newValue }
}

/// One attempt, start to reap, on its own thread.
private struct Attempt {
    let supervisor: SupervisorCore
    let request: JailRequest
    let cancelFD: Int32
    let onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    let serial: UInt64
    var facts = TerminationFacts()
    var report: AttemptReport

    init(
        supervisor: SupervisorCore, request: JailRequest, cancelFD: Int32,
        onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?, serial: UInt64
    ) {
        self.supervisor = supervisor
        self.request = request
        self.cancelFD = cancelFD
        self.onOutput = onOutput
        self.serial = serial
        self.report = AttemptReport(
            outcome: .setupError, startedAt: wallClockSeconds(), policyName: request.policy.name,
            policyDigest: request.policyDigest)
    }

    mutating func setupFailed(_ stage: String, errno: Int32? = nil, detail: String? = nil) -> AttemptReport {
        report.setup = SetupFailure(stage: stage, errno: errno.map(errnoName), detail: detail)
        report.outcome = .setupError
        report.finishedAt = wallClockSeconds()
        return report
    }

    mutating func run() -> AttemptReport {
        let policy = request.policy

        let seccomp: [UInt8]
        do {
            seccomp = try SeccompCompiler.cached(policy.seccomp).bytes
        } catch {
            return setupFailed("seccomp", detail: "\(error)")
        }

        let plans: JailPlans
        do {
            plans = try PlanBuilder(host: supervisor.host).build(request, seccomp: seccomp, lastCap: supervisor.lastCap)
        } catch {
            return setupFailed("plan", detail: error.message)
        }
        let plan = plans.task
        let blob = plan.blob()

        // A parked jail of this shape (its filesystem built) if the pool has one; else clone one
        // here (paying the cgroup mkdirs, on v1 the attach, and every mount).
        let shape = JailShape(policy: policy, cgroups: supervisor.cgroups != nil, filesystem: plans.filesystem)
        let pool = supervisor.pool
        var jail: ParkedJail
        if let parked = pool?.take(shape) {
            jail = parked
        } else {
            switch ParkedJail.spawn(shape: shape, host: supervisor.host, cgroups: supervisor.cgroups, name: JailName.next("jail")) {
            case .success(let spawned): jail = spawned
            case .failure(let failure):
                if request.keepsShapeWarm { pool?.refill(shape) }
                return setupFailed(failure.stage, errno: failure.errno, detail: failure.detail)
            }
        }
        let cgroup = jail.cgroup
        var cgroupEmptied = false
        defer {
            // The jail's processes are dead (reaped, or killed with the group); the directory
            // removal waits for an RCU grace period on v1, so the pool thread does it.
            if let cgroup, !cgroupEmptied && !cgroup.processes().isEmpty { cgroup.kill() }
            if let pool { pool.retire(jail.finished) } else { ParkedJail.retire(jail.finished) }
            if pool != nil, request.keepsShapeWarm { pool?.refill(shape) }
        }

        var pending = jail.pending
        var childError = edgy_child_error()
        let released = blob.withUnsafeBytes { raw in
            edgy_spawn_release(&pending, raw.baseAddress, raw.count, &childError)
        }
        let execStart = monotonicNanos()
        report.startedAt = wallClockSeconds()
        let pidfd = pending.pidfd
        defer { closeDescriptor(pidfd) }
        if released != 0 {
            for fd in [jail.stdinFD, jail.stdoutFD, jail.stderrFD] { closeDescriptor(fd) }
            var code: Int32 = 0, status: Int32 = 0
            _ = edgy_waitid_pidfd(pidfd, &code, &status, nil, 0)
            if released == 1 {
                let stage = childError.stage
                var detail: String?
                if stage == Int32(EDGY_STAGE_TASK_FILE.rawValue), childError.op_index >= 0,
                   Int(childError.op_index) < plan.opDescriptions.count {
                    detail = plan.opDescriptions[Int(childError.op_index)]
                } else if stage == Int32(EDGY_STAGE_EXECVE.rawValue) {
                    detail = "execve \(plan.program)"
                } else if stage == Int32(EDGY_STAGE_RLIMIT.rawValue) {
                    detail = "rlimit \(childError.op_index)"
                }
                return setupFailed(String(cString: edgy_stage_name(stage)), errno: childError.err, detail: detail)
            }
            return setupFailed("gate", errno: errno, detail: "the child died before it was released")
        }

        supervise(
            pidfd: pidfd, stdinFD: jail.stdinFD, stdoutFD: jail.stdoutFD,
            stderrFD: jail.stderrFD, execStart: execStart, cgroup: cgroup)

        var usage = rusage()
        var code: Int32 = 0, status: Int32 = 0
        if edgy_waitid_pidfd(pidfd, &code, &status, &usage, 0) == 0 {
            if code == CLD_EXITED {
                facts.exitCode = status
            } else {
                facts.signal = status
            }
        }
        report.wallMs = Int((monotonicNanos() - execStart) / 1_000_000)
        report.finishedAt = wallClockSeconds()
        report.cpuUserMs = Int(usage.ru_utime.tv_sec) * 1000 + Int(usage.ru_utime.tv_usec) / 1000
        report.cpuSysMs = Int(usage.ru_stime.tv_sec) * 1000 + Int(usage.ru_stime.tv_usec) / 1000
        report.maxRssKib = Int(usage.ru_maxrss)
        if let cgroup {
            // Nothing of the attempt may outlive it: descendants, stopped or detached, die here.
            // (PID 1's exit already killed its namespace; the v1 freeze/kill/thaw is for strays.)
            if !cgroup.processes().isEmpty { cgroup.kill() }
            cgroupEmptied = true
            let stats = cgroup.stats()
            report.memoryPeakBytes = stats.memoryPeakBytes
            report.oomKills = stats.oomKills
            report.pidsPeak = stats.pidsPeak
            report.pidsLimitHits = stats.pidsLimitHits
            facts.oomKills = stats.oomKills
            // The group's CPU time includes descendants killed with it, which rusage misses.
            if let user = stats.cpuUserNanos { report.cpuUserMs = max(report.cpuUserMs, Int(user / 1_000_000)) }
            if let system = stats.cpuSystemNanos { report.cpuSysMs = max(report.cpuSysMs, Int(system / 1_000_000)) }
        }
        report.exitCode = facts.exitCode
        report.signal = facts.signal
        report.signalName = facts.signal.map(signalName)
        report.outcome = classify(facts)
        if report.outcome == .seccompViolation {
            report.seccompSyscall = SeccompAudit.violatingSyscall(pid: pending.pid)
        }
        return report
    }

    /// The poll loop: drains stdout and stderr into bounded buffers, feeds stdin, watches the
    /// pidfd, the wall deadline, CPU time and cancellation. Returns once the jail's main process
    /// has exited and both pipes are closed (or a short grace after the exit has passed).
    mutating func supervise(
        pidfd: Int32, stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32, execStart: UInt64,
        cgroup: JailCgroup?
    ) {
        let limits = request.policy.limits
        var stdoutBuffer = OutputBuffer(capacity: limits.stdoutKib * 1024)
        var stderrBuffer = OutputBuffer(capacity: limits.stderrKib * 1024)
        var stdinFD = stdinFD
        var stdoutFD = stdoutFD
        var stderrFD = stderrFD
        var stdinOffset = 0
        let stdinData = request.stdin
        if stdinData.isEmpty {
            closeDescriptor(stdinFD)
            stdinFD = -1
        } else {
            try? setNonBlocking(stdinFD)
        }
        try? setNonBlocking(stdoutFD)
        try? setNonBlocking(stderrFD)

        let wallDeadline = execStart + UInt64(limits.wallTimeS * 1e9)
        let cpuLimitNanos = UInt64(limits.cpuTimeS * 1e9)
        var exitedAt: UInt64?
        var killed = false
        var lastCPUCheck = execStart
        let chunkSize = 64 * 1024
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { chunk.deallocate() }

        func killJail() {
            if killed { return }
            killed = true
            // PID 1's death takes its namespace with it; the cgroup kill catches anything else.
            _ = edgy_pidfd_send_signal(pidfd, SIGKILL)
            cgroup?.kill()
        }

        while stdoutFD >= 0 || stderrFD >= 0 || exitedAt == nil {
            let now = monotonicNanos()
            if let exitedAt, now > exitedAt + 500_000_000 {
                break  // a descendant holds the pipes open; the cgroup kill below ends it
            }
            if exitedAt == nil && now >= wallDeadline && !killed {
                facts.wallDeadlineFired = true
                killJail()
            }
            var fds: [pollfd] = []
            fds.append(pollfd(fd: exitedAt == nil ? pidfd : -1, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0))
            var timeoutMs = 100
            if exitedAt == nil && !killed {
                timeoutMs = min(timeoutMs, Int((wallDeadline - min(now, wallDeadline)) / 1_000_000) + 1)
            }
            let ready = poll(&fds, nfds_t(fds.count), Int32(timeoutMs))
            if ready < 0 && errno != EINTR { break }

            if fds[1].revents != 0 && !facts.cancelled {
                facts.cancelled = true
                killJail()
            }
            for (index, kind) in [(2, OutputStreamKind.stdout), (3, OutputStreamKind.stderr)] where fds[index].revents != 0 {
                let fd = kind == .stdout ? stdoutFD : stderrFD
                // Read until the pipe is empty so a flood is drained at pipe speed.
                var closed = false
                for _ in 0..<16 {
                    let n = read(fd, chunk.baseAddress, chunkSize)
                    if n > 0 {
                        let slice = UnsafeRawBufferPointer(rebasing: chunk[..<n])
                        let kept = kind == .stdout ? stdoutBuffer.append(slice) : stderrBuffer.append(slice)
                        if !kept.isEmpty { onOutput?(kind, kept) }
                        if n < chunkSize { break }
                    } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                        closed = true
                        break
                    } else {
                        break
                    }
                }
                if limits.outputOverflow == .kill && !killed
                    && (stdoutBuffer.truncatedBytes > 0 || stderrBuffer.truncatedBytes > 0) {
                    facts.outputLimitFired = true
                    killJail()
                }
                if closed {
                    closeDescriptor(fd)
                    if kind == .stdout { stdoutFD = -1 } else { stderrFD = -1 }
                }
            }
            if stdinFD >= 0 && fds[4].revents != 0 {
                let n = stdinData.withUnsafeBytes { raw in
                    write(stdinFD, raw.baseAddress! + stdinOffset, min(raw.count - stdinOffset, 64 * 1024))
                }
                if n > 0 { stdinOffset += n }
                if (n < 0 && errno != EAGAIN && errno != EINTR) || stdinOffset >= stdinData.count {
                    closeDescriptor(stdinFD)  // EOF for the workload, or it stopped reading (EPIPE)
                    stdinFD = -1
                }
            }
            if exitedAt == nil && fds[0].revents != 0 {
                // The main process is PID 1 of the jail: the kernel killed and reaped the rest of
                // its PID namespace before reporting its exit. (The cgroup is checked after the reap.)
                exitedAt = monotonicNanos()
            }
            // CPU time of the whole group (RLIMIT_CPU only sees one process at a time).
            if exitedAt == nil && !killed, let cgroup, monotonicNanos() - lastCPUCheck > 50_000_000 {
                lastCPUCheck = monotonicNanos()
                if let used = cgroup.stats().cpuUsageNanos, used >= cpuLimitNanos {
                    facts.cpuLimitFired = true
                    killJail()
                }
            }
        }
        for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { closeDescriptor(fd) }
        if exitedAt == nil { killJail() }
        report.stdout = stdoutBuffer.kept
        report.stderr = stderrBuffer.kept
        report.stdoutTruncatedBytes = stdoutBuffer.truncatedBytes
        report.stderrTruncatedBytes = stderrBuffer.truncatedBytes
    }
}
