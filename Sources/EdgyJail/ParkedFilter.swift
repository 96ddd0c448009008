import EdgyPolicy
import EdgySeccomp
import Synchronization

/// Whether a jail loads its seccomp filter while it is parked, before its request exists, instead
/// of right before execve. The load (the kernel checks, converts and compiles the program: about
/// 0.1 ms for the default policy's) and the listener's handoff (a round trip between the child
/// and the supervisor) then leave the path from request to exec.
///
/// The filter then also governs what the jail itself does after its second gate: mapping the task
/// plan, writing the task's files, rlimits, ids, capabilities, execve. So only a filter that allows
/// every call of `setupSyscalls` outright is loaded early; the compiler narrows none of them by
/// argument (it narrows clone, clone3, socket and ioctl). Every other filter is loaded last, as
/// before. Should the filter stop one of those calls all the same, the parent kills the jail and
/// names the call (`EDGY_STAGE_SETUP_DENIED`) instead of waiting for an answer nobody gives yet.
enum ParkedFilter {
    /// What child.c calls after its second gate (its failure path included: write, exit_group).
    static let setupSyscalls: Set<String> = [
        "read", "write", "fstat", "mmap", "close", "rt_sigprocmask",  // the gates, the plan, the signal mask
        "mkdirat", "openat", "fchown", "fchmod", "fchownat", "chdir",  // the task's files, the working directory
        "prlimit64", "setgroups", "setresgid", "prctl", "setresuid", "capset", "umask",  // limits, ids
        "execve", "exit_group",
    ]

    /// Verdicts per `[seccomp]` table. Tables come from policy files, which are few; like
    /// `SeccompCache`, nothing is evicted.
    static let verdicts = Mutex<[Policy.Seccomp: Bool]>([:])

    /// Whether `request`'s filter is loaded while parked: not a learning run, whose filter reports
    /// everything it does not allow; no ptrace fallback, which needs its tracer attached at release;
    /// and a table that allows all of `setupSyscalls`.
    static func applies(to request: JailRequest) -> Bool {
        guard request.learner == nil, !request.tracesKillsWithoutListener else { return false }
        return allowsSetup(request.policy.seccomp)
    }

    static func allowsSetup(_ seccomp: Policy.Seccomp) -> Bool {
        if let known = verdicts.withLock({ $0[seccomp] }) { return known }
        let allowed = (try? SeccompCompiler.allowedSyscallNames(seccomp)) ?? []
        let verdict = setupSyscalls.isSubset(of: allowed)
        verdicts.withLock { $0[seccomp] = verdict }
        return verdict
    }
}
