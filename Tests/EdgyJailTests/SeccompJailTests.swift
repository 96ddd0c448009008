import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Testing

/// The default filter inside a real jail: the probe tries each forbidden thing as the workload.
@Suite(.timeLimit(.minutes(1)))
struct SeccompJailTests {
    static func probe(_ arguments: [String], configure: (inout Policy) -> Void = { _ in }) async throws -> AttemptReport {
        let policy = TestSupport.withProbe(TestSupport.policy([TestSupport.probe] + arguments, configure: configure))
        return try await TestSupport.supervisor().run(JailRequest(policy: policy))
    }

    @Test func aForbiddenSyscallIsAViolationNamedInTheReport() async throws {
        var report = try await Self.probe(["syscall", "ptrace"])
        if report.seccompSyscall == nil {
            // The name comes from the kernel's audit record, which the kernel rate-limits (a burst
            // of 10 per 5 s); other tests' kills may have used the burst up. Wait it out once.
            try await Task.sleep(for: .seconds(6))
            report = try await Self.probe(["syscall", "ptrace"])
        }
        #expect(report.outcome == .seccompViolation)
        #expect(report.signal == SIGSYS)
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
        #expect(report.signal == SIGSYS)
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
    }

    @Test(arguments: [("x32", true), ("i386", true)])
    func foreignABIsAreKilled(abi: String, killed: Bool) async throws {
        let report = try await Self.probe([abi])
        #expect(report.outcome == .seccompViolation, "\(abi): \(report.outcome)")
    }

    @Test func socketFamiliesOutsideThePolicyAreKilled() async throws {
        let packet = try await Self.probe(["socket", "packet"])
        #expect(packet.outcome == .seccompViolation)
        let unix = try await Self.probe(["socket", "unix"])
        #expect(unix.exitCode == 0, "\(unix.stdoutText)")
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
