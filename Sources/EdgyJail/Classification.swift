import EdgyModel
import Glibc

/// What the supervisor observed about an attempt, before it is named. Everything the outcome
/// depends on is here, so that classification is a pure function with a table of tests.
public struct TerminationFacts: Sendable, Hashable {
    /// From waitid: the exit status when the process exited, the signal when it was killed.
    public var exitCode: Int32?
    public var signal: Int32?
    public var cancelled: Bool
    public var wallDeadlineFired: Bool
    /// CPU time ran out: by RLIMIT_CPU (SIGXCPU) or by the supervisor's cgroup accounting.
    public var cpuLimitFired: Bool
    /// A stream passed its cap under `output_overflow = "kill"`.
    public var outputLimitFired: Bool
    public var oomKills: Int
    /// The supervisor killed the main process for a syscall its filter does not allow.
    public var seccompKilledMain: Bool

    public init(
        exitCode: Int32? = nil, signal: Int32? = nil,
        cancelled: Bool = false, wallDeadlineFired: Bool = false, cpuLimitFired: Bool = false,
        outputLimitFired: Bool = false, oomKills: Int = 0, seccompKilledMain: Bool = false
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.cancelled = cancelled
        self.wallDeadlineFired = wallDeadlineFired
        self.cpuLimitFired = cpuLimitFired
        self.outputLimitFired = outputLimitFired
        self.oomKills = oomKills
        self.seccompKilledMain = seccompKilledMain
    }
}

/// Names the outcome of a jail that ran (a setup failure is reported before anything runs, and
/// never gets here). The order is the order of causes: a kill
/// we sent (cancel, deadline, output cap, a forbidden syscall) explains the signal that followed it;
/// the kernel's own kills (OOM, RLIMIT_CPU, seccomp without a listener) explain theirs.
public func classify(_ facts: TerminationFacts) -> Outcome {
    if facts.cancelled { return .cancelled }
    if facts.wallDeadlineFired { return .wallTimeout }
    if facts.outputLimitFired { return .outputLimit }
    if facts.cpuLimitFired || facts.signal == SIGXCPU { return .cpuTimeout }
    if facts.seccompKilledMain { return .seccompViolation }
    let failed = facts.signal != nil || (facts.exitCode ?? 0) != 0
    if facts.oomKills > 0 && failed { return .memoryLimit }
    if facts.signal == SIGSYS { return .seccompViolation }
    if facts.signal != nil { return .signaled }
    return .exited
}

/// "SIGKILL" for 9, and so on.
public func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
        SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGCHLD: "SIGCHLD", SIGCONT: "SIGCONT", SIGSTOP: "SIGSTOP", SIGTSTP: "SIGTSTP", SIGXCPU: "SIGXCPU",
        SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
    ]
    return names[signal] ?? "SIG\(signal)"
}
