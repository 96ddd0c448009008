import CEdgyJail
import EdgyCgroup
import EdgyPolicy
import EdgySeccomp
import EdgySystem
import Glibc

/// The watch over one running jail: the poll loop that pumps its stdio and watches its pidfd, its
/// seccomp listener, the wall deadline, CPU time, the output cap and cancellation, and kills it
/// (or, for a forbidden syscall, the process that made it) when one of them says so.
struct Supervision {
    let cancelFD: Int32
    let cgroup: JailCgroup?
    let wallDeadline: UInt64
    let cpuLimitNanos: UInt64
    let killOnOverflow: Bool
    /// What was seen: which limit fired, whether it was cancelled.
    private(set) var facts = TerminationFacts()
    /// The first forbidden syscall a process of the jail made (it was killed for it).
    private(set) var seccompSyscall: String?
    /// In a learning run, what answers the listener instead of `answerViolation`.
    var learning: LearningObserver?
    private var listening = false
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
        listening = process.seccompListener >= 0
        while pump.isOpen || exitedAt == nil {
            let now = monotonicNanos()
            if let exitedAt, now > exitedAt + 500_000_000 { break }
            if exitedAt == nil && now >= wallDeadline && !killed {
                facts.wallDeadlineFired = true
                kill(process)
            }
            var fds = [pollfd(fd: exitedAt == nil ? process.pidfd : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listening && exitedAt == nil ? process.seccompListener : -1, events: Int16(POLLIN), revents: 0)]
                + pump.pollEntries
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
            if fds[2].revents & Int16(POLLIN) != 0, learning != nil {
                listening = learning?.answerPending(process.stoppedCalls) ?? false
            } else if fds[2].revents & Int16(POLLIN) != 0 {
                answerViolation(process)
            } else if fds[2].revents != 0 {
                listening = false  // every task of the filter is gone
            }
            pump.handle(fds[3...])
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

    /// A process made a syscall the filter does not allow and waits for our answer: the answer is
    /// SIGKILL to its whole process (what `kill_process` would have done), the syscall never runs.
    /// The notification names the thread; /proc names its process. The thread cannot exit while it
    /// waits, so its id still means it until the notification stops being valid.
    private mutating func answerViolation(_ process: borrowing JailProcess) {
        let calls = process.stoppedCalls
        var violation = edgy_seccomp_violation()
        let received = calls.receive(&violation)
        if received == -ENOENT || received == -EINTR { return }  // the caller died meanwhile; or retry
        guard received == 0 else {
            listening = false
            return
        }
        if seccompSyscall == nil {
            seccompSyscall = SyscallNames.describe(number: violation.nr, arch: violation.arch)
        }
        let processID = edgy_thread_group(violation.pid)
        guard calls.isWaiting(violation.id) else { return }
        if processID == process.pid {
            facts.seccompKilledMain = true
            kill(process)
        } else {
            _ = Glibc.kill(processID, SIGKILL)
        }
        // The caller is dead or dying; a traced one's tracer waits for a word before it goes on.
        calls.answer(violation.id, error: EPERM)
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
        if let used = cgroup.cpuUsageNanos(), used >= cpuLimitNanos {
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
