import EdgyCgroup
import EdgyPolicy
import EdgySystem
import Glibc

/// The watch over one running jail: the poll loop that pumps its stdio and watches its pidfd, the
/// wall deadline, CPU time, the output cap and cancellation, and kills it when one of them says so.
struct Supervision {
    let cancelFD: Int32
    let cgroup: JailCgroup?
    let wallDeadline: UInt64
    let cpuLimitNanos: UInt64
    let killOnOverflow: Bool
    /// What was seen: which limit fired, whether it was cancelled.
    private(set) var facts = TerminationFacts()
    private var exitedAt: UInt64?
    private var killed = false
    private var lastCPUCheck: UInt64

    init(limits: Policy.Limits, cancelFD: Int32, cgroup: JailCgroup?, execStart: UInt64) {
        self.cancelFD = cancelFD
        self.cgroup = cgroup
        wallDeadline = execStart + UInt64(limits.wallTimeS * 1e9)
        cpuLimitNanos = UInt64(limits.cpuTimeS * 1e9)
        killOnOverflow = limits.outputOverflow == .kill
        lastCPUCheck = execStart
    }

    /// Runs until the jail's main process has exited and both pipes are closed (or a short grace
    /// after the exit has passed: a descendant holds the pipes open, and the cgroup kill after the
    /// reap ends it).
    mutating func run(_ process: borrowing JailProcess, pump: inout OutputPump) {
        while pump.isOpen || exitedAt == nil {
            let now = monotonicNanos()
            if let exitedAt, now > exitedAt + 500_000_000 { break }
            if exitedAt == nil && now >= wallDeadline && !killed {
                facts.wallDeadlineFired = true
                kill(process)
            }
            var fds = [pollfd(fd: exitedAt == nil ? process.pidfd : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0)] + pump.pollEntries
            let timeout = pollTimeoutMs(now: now)
            do {
                _ = try syscallRetrying { poll(&fds, nfds_t(fds.count), timeout) }
            } catch {
                break
            }
            if fds[1].revents != 0 && !facts.cancelled {
                facts.cancelled = true
                kill(process)
            }
            pump.handle(fds[2...])
            if killOnOverflow && !killed && pump.overflowed {
                facts.outputLimitFired = true
                kill(process)
            }
            if exitedAt == nil && fds[0].revents != 0 {
                // The main process is PID 1 of the jail: the kernel killed and reaped the rest of
                // its PID namespace before reporting its exit. (The cgroup is checked after the reap.)
                exitedAt = monotonicNanos()
            }
            checkCPUTime(process)
        }
        if exitedAt == nil { kill(process) }
    }

    /// At most 100 ms, and no later than the wall deadline while it can still fire.
    private func pollTimeoutMs(now: UInt64) -> Int32 {
        var timeoutMs = 100
        if exitedAt == nil && !killed {
            timeoutMs = min(timeoutMs, Int((wallDeadline - min(now, wallDeadline)) / 1_000_000) + 1)
        }
        return Int32(timeoutMs)
    }

    /// CPU time of the whole group (RLIMIT_CPU only sees one process at a time), every 50 ms.
    private mutating func checkCPUTime(_ process: borrowing JailProcess) {
        guard exitedAt == nil && !killed, let cgroup, monotonicNanos() - lastCPUCheck > 50_000_000 else { return }
        lastCPUCheck = monotonicNanos()
        if let used = cgroup.stats().cpuUsageNanos, used >= cpuLimitNanos {
            facts.cpuLimitFired = true
            kill(process)
        }
    }

    /// PID 1's death takes its namespace with it; the cgroup kill catches anything else.
    private mutating func kill(_ process: borrowing JailProcess) {
        if killed { return }
        killed = true
        process.kill()
        cgroup?.kill()
    }
}
