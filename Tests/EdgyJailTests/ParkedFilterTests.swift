@testable import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Synchronization
import Testing

/// Filters loaded while a jail is parked (`ParkedFilter`): only tables that allow the jail's own
/// start, with the same effect on the workload, and never a hang when a table is misjudged.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct ParkedFilterTests {
    /// What `/bin/true` itself calls (glibc's start and exit), besides `setupSyscalls`.
    static let trueNeeds = ["brk", "access", "newfstatat", "pread64", "arch_prctl", "set_tid_address",
                            "set_robust_list", "rseq", "mprotect", "munmap"]

    static func seccompOfParked() -> [String] {
        PoolTests.ourChildren().map { PoolTests.statusFields($0)["Seccomp"] ?? "?" }
    }

    /// The default table allows the jail's whole start: parked jails already run under their
    /// filter, and a forbidden call from a pooled jail is still a violation with its name.
    @Test func aParkedJailIsAlreadyUnderItsFilter() async throws {
        let pooled = try PoolTests.pooled()
        defer { pooled.shutdown() }
        let policy = TestSupport.withProbe(TestSupport.policy([TestSupport.probe, "syscall", "ptrace"]))
        #expect(ParkedFilter.allowsSetup(policy.seccomp))
        _ = await pooled.run(JailRequest(policy: policy))
        #expect(try await PoolTests.waitParked(pooled, 2))
        #expect(Self.seccompOfParked() == ["2", "2"])
        let report = await pooled.run(JailRequest(policy: policy))
        #expect(report.outcome == .seccompViolation, "\(report.outcome) \(String(describing: report.setup))")
        #expect(report.seccompSyscall == "ptrace")
    }

    /// A table that forbids a call of the jail's own start (umask) is loaded last, as before: the
    /// parked jail has no filter yet, a task starts, and the workload's own umask is the violation.
    @Test func aTableThatForbidsTheJailsStartIsLoadedLast() async throws {
        let pooled = try PoolTests.pooled()
        defer { pooled.shutdown() }
        let forbidsUmask: (inout Policy) -> Void = { $0.seccomp.deny.append("umask") }
        #expect(!ParkedFilter.allowsSetup(TestSupport.policy(configure: forbidsUmask).seccomp))
        let first = await PoolTests.run(pooled, "echo fine", configure: forbidsUmask)
        #expect(first.outcome == .exited && first.stdoutText == "fine\n", "\(first.outcome) \(first.stderrText)")
        #expect(try await PoolTests.waitParked(pooled, 2))
        #expect(Self.seccompOfParked() == ["0", "0"])
        let report = await PoolTests.run(pooled, "umask 077; echo not reached", configure: forbidsUmask)
        #expect(report.outcome == .seccompViolation, "\(report.outcome) \(String(describing: report.setup))")
        #expect(report.seccompSyscall == "umask")
        #expect(report.stdoutText.isEmpty)
    }

    /// `setupSyscalls` is all the jail calls after its second gate: under a table that allows only
    /// those and what /bin/true needs, a pooled jail with a task file and limits starts and exits.
    @Test func theSetupListIsWhatTheJailCalls() async throws {
        let pooled = try PoolTests.pooled()
        defer { pooled.shutdown() }
        let narrow: (inout Policy) -> Void = {
            $0.seccomp.allow = ParkedFilter.setupSyscalls.sorted() + Self.trueNeeds
            $0.seccomp.deny = []
        }
        let policy = TestSupport.policy(["/bin/true"], configure: narrow)
        #expect(ParkedFilter.allowsSetup(policy.seccomp))
        let files = [TaskFile(path: "sub/f.txt", contents: Array("x\n".utf8), mode: 0o600)]
        _ = await pooled.run(JailRequest(policy: policy, files: files))
        #expect(try await PoolTests.waitParked(pooled, 2))
        #expect(Self.seccompOfParked() == ["2", "2"])
        let report = await pooled.run(JailRequest(policy: policy, files: files))
        #expect(report.outcome == .exited && report.exitCode == 0,
                "\(report.outcome) \(String(describing: report.setup)) \(report.seccompSyscall ?? "")")
    }

    /// Were a table misjudged (here the verdict is forced), the filter would stop the jail's own
    /// start with nobody to answer yet: the attempt ends in a setup error naming the call, within
    /// the parent's grace of 5 s, instead of waiting forever.
    @Test func aMisjudgedTableEndsInASetupErrorNotAHang() async throws {
        let policy = TestSupport.policy(["/bin/true"]) {
            $0.seccomp.deny += ["umask", "syncfs"]  // a table of this test's own
            $0.run.hostname = "misjudged"
        }
        ParkedFilter.verdicts.withLock { $0[policy.seccomp] = true }
        defer { ParkedFilter.verdicts.withLock { $0[policy.seccomp] = nil } }
        let started = ContinuousClock.now
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.outcome == .setupError, "\(report.outcome)")
        #expect(report.setup?.stage == "jail start denied by the filter loaded while parked", "\(String(describing: report.setup))")
        #expect(report.setup?.detail?.contains("umask") == true, "\(String(describing: report.setup))")
        #expect(ContinuousClock.now - started < .seconds(15))
    }
}
