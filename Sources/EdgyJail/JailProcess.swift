import CEdgyJail
import EdgySystem
import Glibc
import Synchronization

/// A released jail's main process: its pidfd, its seccomp listener and the parent's ends of its
/// stdio, owned by exactly one value and closed exactly once (by `takeStdio`'s taker, or here).
struct JailProcess: ~Copyable {
    let pid: pid_t
    let pidfd: Int32
    /// The listener of the jail's filter: a forbidden syscall arrives here. -1 without a filter,
    /// or when the kernel refused a listener and the filter kills by itself.
    /// In a learning run where the child got no listener: the learning tracer's channel, which
    /// speaks the same calls and answers (`edgy_tracer_receive`, `edgy_tracer_respond`).
    let seccompListener: Int32
    let tracer: LearningTracer?
    private var stdio: (stdin: Int32, stdout: Int32, stderr: Int32)

    /// Takes over the pidfd and listener of `pending` (which the release leaves open) and the stdio ends.
    init(pending: edgy_pending, stdin: Int32, stdout: Int32, stderr: Int32) {
        pid = pending.pid
        pidfd = pending.pidfd
        seccompListener = pending.listener_fd
        tracer = pending.tracer_pid > 0 ? LearningTracer(pid: pending.tracer_pid) : nil
        stdio = (stdin, stdout, stderr)
    }

    /// Where the jail's stopped syscalls arrive: its listener, or the learning tracer's channel.
    var stoppedCalls: StoppedCalls { StoppedCalls(fd: seccompListener, traced: tracer != nil) }

    /// SIGKILL through the pidfd; harmless once the process is gone.
    func kill() {
        if pidfd >= 0 { _ = edgy_pidfd_send_signal(pidfd, SIGKILL) }
    }

    /// The stdio ends, for an `OutputPump` that closes them; later calls get -1s.
    mutating func takeStdio() -> (stdin: Int32, stdout: Int32, stderr: Int32) {
        defer { stdio = (-1, -1, -1) }
        return stdio
    }

    /// How the process ended, from `waitid`.
    struct Exit {
        var exitCode: Int32?
        var signal: Int32?
        var usage = rusage()
    }

    /// Waits for the process to end and reaps it. Nil fields when it was already reaped.
    func reap() -> Exit {
        var exit = Exit()
        guard pidfd >= 0 else { return exit }
        // A traced process that exited is reaped by its real parent only once its tracer let go.
        tracer?.stop()
        var code: Int32 = 0, status: Int32 = 0
        if edgy_waitid_pidfd(pidfd, &code, &status, &exit.usage, 0) == 0 {
            if code == CLD_EXITED { exit.exitCode = status } else { exit.signal = status }
        }
        return exit
    }

    deinit {
        for fd in [stdio.stdin, stdio.stdout, stdio.stderr] where fd >= 0 { closeDescriptor(fd) }
        if pidfd >= 0 { closeDescriptor(pidfd) }
        if seccompListener >= 0 { closeDescriptor(seccompListener) }
    }
}

/// The learning tracer process of one jail (tracer.c), stopped and reaped exactly once: by the
/// reap of the jail's process, or when the last reference goes.
final class LearningTracer: Sendable {
    let pid: pid_t
    private let stopped = Atomic<Bool>(false)

    init(pid: pid_t) { self.pid = pid }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        edgy_tracer_stop(pid)
    }

    deinit { stop() }
}

/// Where a jail's stopped syscalls arrive and are answered: its filter's seccomp listener or,
/// where none could be had, the learning tracer's channel, which speaks the same calls.
struct StoppedCalls {
    let fd: Int32
    let traced: Bool

    /// The next call: 0; -ENOENT (its caller died meanwhile) or -EINTR; any other -errno when no
    /// more will come (every task of the filter, or every tracee, is gone).
    func receive(_ call: inout edgy_seccomp_violation) -> Int32 {
        traced ? edgy_tracer_receive(fd, &call) : edgy_seccomp_receive(fd, &call)
    }

    /// Whether the caller of `id` still waits, so that its pid still names it. A traced caller
    /// waits until it is answered.
    func isWaiting(_ id: UInt64) -> Bool { traced || edgy_seccomp_waiting(fd, id) != 0 }

    /// Lets call `id` run (`error` 0), or fails it with `error`.
    func answer(_ id: UInt64, error: Int32) {
        _ = traced ? edgy_tracer_respond(fd, id, error) : edgy_seccomp_respond(fd, id, error)
    }
}
