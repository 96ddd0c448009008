import EdgyJail
import EdgyModel
import Glibc
import Testing

/// `classify` is a pure function of what the supervisor observed: each row is one ending.
struct ClassificationTests {
    @Test(arguments: [
        (TerminationFacts(exitCode: 0), Outcome.exited),
        (TerminationFacts(exitCode: 3), .exited),
        (TerminationFacts(signal: SIGSEGV), .signaled),
        (TerminationFacts(signal: SIGKILL), .signaled),
        // A kill we sent explains the signal that followed it.
        (TerminationFacts(signal: SIGKILL, cancelled: true), .cancelled),
        (TerminationFacts(signal: SIGKILL, wallDeadlineFired: true), .wallTimeout),
        (TerminationFacts(signal: SIGKILL, cancelled: true, wallDeadlineFired: true), .cancelled),
        (TerminationFacts(signal: SIGKILL, outputLimitFired: true), .outputLimit),
        (TerminationFacts(signal: SIGKILL, wallDeadlineFired: true, outputLimitFired: true), .wallTimeout),
        // CPU time: RLIMIT_CPU's SIGXCPU, or the supervisor's group accounting.
        (TerminationFacts(signal: SIGXCPU), .cpuTimeout),
        (TerminationFacts(signal: SIGKILL, cpuLimitFired: true), .cpuTimeout),
        // The OOM killer: only when the workload failed.
        (TerminationFacts(signal: SIGKILL, oomKills: 1), .memoryLimit),
        (TerminationFacts(exitCode: 137, oomKills: 2), .memoryLimit),
        (TerminationFacts(exitCode: 0, oomKills: 1), .exited),
        // A forbidden syscall: the supervisor's kill after the filter's notification, or (no
        // listener) the filter's own kill_process, which arrives as SIGSYS.
        (TerminationFacts(signal: SIGKILL, seccompKilledMain: true), .seccompViolation),
        (TerminationFacts(signal: SIGKILL, oomKills: 1, seccompKilledMain: true), .seccompViolation),
        (TerminationFacts(signal: SIGKILL, wallDeadlineFired: true, seccompKilledMain: true), .wallTimeout),
        (TerminationFacts(signal: SIGSYS), .seccompViolation),
        (TerminationFacts(signal: SIGSYS, wallDeadlineFired: true), .wallTimeout),
    ])
    func classification(facts: TerminationFacts, expected: Outcome) {
        #expect(classify(facts) == expected)
    }

    @Test(arguments: [Outcome.setupError, .lost])
    func serviceFaultsAreTheServices(outcome: Outcome) {
        #expect(outcome.isServiceFault)
    }

    @Test(arguments: [Outcome.exited, .signaled, .wallTimeout, .cpuTimeout, .memoryLimit, .seccompViolation, .outputLimit, .cancelled])
    func workloadOutcomesAreTheWorkloads(outcome: Outcome) {
        #expect(!outcome.isServiceFault)
    }

    @Test func signalNames() {
        #expect(signalName(SIGKILL) == "SIGKILL")
        #expect(signalName(SIGSYS) == "SIGSYS")
        #expect(signalName(64) == "SIG64")
    }
}
