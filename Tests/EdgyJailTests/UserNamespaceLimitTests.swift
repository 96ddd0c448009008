import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySystem
import EdgyTestSupport
import Glibc
import Testing

/// Per-user kernel counts a jail could spend on host root's behalf (the daemon owns every jail's
/// user namespace): each jail's own namespace limits them, and its rlimits bound the rest.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct UserNamespaceLimitTests {
    /// inotify fds held by processes of this test process's jails.
    static func jailInotifyInstances() -> Int {
        var count = 0
        for entry in LimitTests.ourJailProcesses() {
            guard let pid = entry.split(separator: " ").first, let dir = opendir("/proc/\(pid)/fd") else { continue }
            defer { closedir(dir) }
            while let fd = readdir(dir) {
                let name = withUnsafeBytes(of: fd.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                var target = [CChar](repeating: 0, count: 256)
                let n = readlink("/proc/\(pid)/fd/\(name)", &target, target.count - 1)
                if n > 0, String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "anon_inode:inotify" {
                    count += 1
                }
            }
        }
        return count
    }

    @Test func aJailHoldingInotifyInstancesLeavesHostRootItsOwn() async throws {
        // 200 is more than the host's default allowance for root (128), and within open_files.
        let policy = TestSupport.withProbe(TestSupport.policy([TestSupport.probe, "inotify", "200", "6"]) { policy in
            policy.limits.openFiles = 512
            policy.limits.wallTimeS = 30
        })
        let supervisor = try TestSupport.supervisor()
        let jail = Task { await supervisor.run(JailRequest(policy: policy)) }

        // Wait until the jail holds all it can get (its count stops at its own limit).
        let deadline = monotonicNanos() + 15_000_000_000
        var held = 0
        while monotonicNanos() < deadline {
            held = Self.jailInotifyInstances()
            if held >= 16 { break }
            usleep(50_000)
        }
        #expect(held == 16, "the jail holds \(held) inotify instances")

        // Meanwhile host root (this test process) still gets an instance.
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        let hostErrno = errno
        if fd >= 0 { close(fd) }
        #expect(fd >= 0, "host root's inotify_init1 failed with errno \(hostErrno) while a jail held \(held)")

        let report = await jail.value
        #expect(report.outcome == .exited, "\(report.outcome) \(report.stderrText)")
        #expect(report.stdoutText == "held=16 errno=EMFILE\n", "\(report.stdoutText) \(report.stderrText)")
    }

    @Test func aJailCannotCreateUserNamespacesEvenWhenSeccompAllowsIt() async throws {
        // The filter lets the clone through; the namespace's own limit (0) refuses it.
        let policy = TestSupport.withProbe(TestSupport.policy([TestSupport.probe, "clone-ns", "CLONE_NEWUSER"]) { policy in
            policy.seccomp.allowNamespaceClone = true
        })
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.stdoutText == "denied errno=ENOSPC\n", "\(report.stdoutText) \(report.stderrText)")
        let limits = try await TestSupport.sh("cat /proc/sys/user/max_user_namespaces /proc/sys/user/max_inotify_instances")
        #expect(limits.stdoutText == "0\n16\n", "\(limits.stdoutText) \(limits.stderrText)")
    }

    @Test func signalMessageQueueAndMemlockRlimitsComeFromThePolicy() async throws {
        let script = "import resource as r\nfor k in (r.RLIMIT_SIGPENDING, r.RLIMIT_MSGQUEUE, r.RLIMIT_MEMLOCK): print(*r.getrlimit(k))"
        let policy = TestSupport.policy(["/usr/bin/python3", "-c", script]) { policy in
            policy.limits.pendingSignals = 32
            policy.limits.mqueueKib = 16
            policy.limits.memlockKib = 128
        }
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.stdoutText == "32 32\n16384 16384\n131072 131072\n", "\(report.stdoutText) \(report.stderrText)")
    }
}
