import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Testing

/// The default filter inside a real jail: the probe tries each forbidden thing as the workload.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(1)))
struct SeccompJailTests {
    static func probe(_ arguments: [String], configure: (inout Policy) -> Void = { _ in }) async throws -> AttemptReport {
        let policy = TestSupport.withProbe(TestSupport.policy([TestSupport.probe] + arguments, configure: configure))
        return try await TestSupport.supervisor().run(JailRequest(policy: policy))
    }

    /// The supervisor answers the filter's notification: it names the call and kills the caller.
    @Test func aForbiddenSyscallIsAViolationNamedInTheReport() async throws {
        let report = try await Self.probe(["syscall", "ptrace"])
        #expect(report.outcome == .seccompViolation)
        #expect(report.signal == SIGKILL)
        #expect(report.seccompSyscall == "ptrace")
    }

    /// Many violations at once, each named: nothing is rate-limited (the kernel's audit log is).
    @Test func violationsInABurstAreAllNamed() async throws {
        let names = ["ptrace", "bpf", "mount", "keyctl", "reboot", "swapon", "acct", "iopl", "kexec_load", "setns", "unshare", "chroot"]
        let reports = try await withThrowingTaskGroup(of: (String, AttemptReport).self) { group in
            for name in names { group.addTask { (name, try await Self.probe(["syscall", name])) } }
            return try await group.reduce(into: [String: AttemptReport]()) { $0[$1.0] = $1.1 }
        }
        for name in names {
            #expect(reports[name]?.outcome == .seccompViolation, "\(name)")
            #expect(reports[name]?.seccompSyscall == name)
        }
    }

    /// A forbidden call in a child process kills that process, not the jail: the shell goes on,
    /// sees its child killed, and the report still names the call.
    @Test func aViolationInAChildProcessKillsOnlyThatProcess() async throws {
        let policy = TestSupport.withProbe(TestSupport.policy(
            ["/bin/sh", "-c", "\(TestSupport.probe) syscall ptrace; echo child status $?"]))
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.outcome == .exited, "\(report.outcome) \(report.stderrText)")
        #expect(report.stdoutText.contains("child status 137"), "\(report.stdoutText)")
        #expect(report.seccompSyscall == "ptrace")
    }

    /// A thread other than the main one makes the call: the whole process dies.
    @Test func aViolationInASecondThreadKillsTheProcess() async throws {
        let report = try await Self.probe(["thread-syscall", "ptrace"])
        #expect(report.outcome == .seccompViolation, "\(report.outcome) \(report.stdoutText)")
        #expect(report.seccompSyscall == "ptrace")
    }

    @Test(arguments: [
        "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace", "process_vm_readv",
        "process_vm_writev", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon",
        "swapoff", "open_by_handle_at", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "settimeofday", "clock_settime", "acct", "iopl", "ioperm",
    ])
    func dangerousSyscallsAreKilled(name: String) async throws {
        let report = try await Self.probe(["syscall", name])
        #expect(report.outcome == .seccompViolation, "\(name): \(report.outcome) \(report.stdoutText)")
        #expect(report.seccompSyscall == name)
    }

    @Test(arguments: ["CLONE_NEWUSER", "CLONE_NEWNS", "CLONE_NEWNET", "CLONE_NEWPID"])
    func cloneWithNamespaceFlagsIsKilled(flag: String) async throws {
        let report = try await Self.probe(["clone-ns", flag])
        #expect(report.outcome == .seccompViolation, "\(report.stdoutText)")
    }

    @Test func clone3IsRefusedSoLibcFallsBackToClone() async throws {
        let report = try await Self.probe(["clone3-ns"])
        #expect(report.outcome == .exited)
        #expect(report.stdoutText.contains("ENOSYS"), "\(report.stdoutText)")
        let threads = try await Self.probe(["fork-thread"])
        #expect(threads.exitCode == 0, "\(threads.stdoutText) \(threads.stderrText)")
    }

    @Test func tiocstiIsKilled() async throws {
        let report = try await Self.probe(["ioctl-tiocsti"])
        #expect(report.outcome == .seccompViolation)
        #expect(report.seccompSyscall == "ioctl")
    }

    /// getpid through the other ABIs: the filter does not know them, so they are violations.
    @Test(arguments: [("x32", "x32 syscall 39"), ("i386", "i386 syscall 20")])
    func foreignABIsAreKilled(abi: String, named: String) async throws {
        let report = try await Self.probe([abi])
        #expect(report.outcome == .seccompViolation, "\(abi): \(report.outcome)")
        #expect(report.seccompSyscall == named)
    }

    @Test func socketFamiliesOutsideThePolicyAreKilled() async throws {
        let packet = try await Self.probe(["socket", "packet"])
        #expect(packet.outcome == .seccompViolation)
        #expect(packet.seccompSyscall == "socket")
        let unix = try await Self.probe(["socket", "unix"])
        #expect(unix.exitCode == 0, "\(unix.stdoutText)")
    }

    /// A filter that would stop the jail's own start (the listener handoff reads and writes) is
    /// refused before anything is spawned, instead of a jail waiting for an answer forever.
    @Test func aFilterDenyingTheJailsStartIsASetupError() async throws {
        let report = try await Self.probe(["syscall", "getpid"]) { policy in
            policy.seccomp.deny = ["read"]
        }
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "seccomp compile")
        #expect(report.setup?.detail?.contains("`read` must be allowed") == true, "\(report.setup?.description ?? "")")
    }

    @Test func errnoDefaultActionMakesTheCallFailInstead() async throws {
        let report = try await Self.probe(["syscall", "bpf"]) { policy in
            policy.seccomp.defaultAction = .errno(EPERM, "EPERM")
        }
        #expect(report.outcome == .exited)
        #expect(report.exitCode == 1)
        #expect(report.stdoutText.contains("EPERM"), "\(report.stdoutText)")
    }

    @Test func theProbeSeesNoCapabilitiesAndNoExtraDescriptors() async throws {
        let fds = try await Self.probe(["fds"])
        #expect(fds.stdoutText.trimmingSuffix() == "0 1 2", "\(fds.stdoutText)")
    }
}

extension String {
    func trimmingSuffix() -> String {
        var s = self
        while s.last == "\n" || s.last == " " { s.removeLast() }
        return s
    }
}
