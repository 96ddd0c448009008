import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySystem
import EdgyTestSupport
import Glibc
import Testing

/// The "Supervision" show list: each limit holds against a real workload in a real jail with
/// the real cgroup manager, is reported precisely, and leaves nothing behind on the host.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct LimitTests {
    /// Where the attempt's `jail-<our pid>-N` groups live: `edgy-test` in each controller
    /// hierarchy the v1 manager uses, or the one v2 `edgy-test` group.
    static let controllerRoots = TestSupport.jailCgroupParents()

    /// This process's jail cgroups still present on the host, as "controller/name".
    static func leftoverCgroups() -> [String] {
        var found: [String] = []
        for root in controllerRoots {
            guard let dir = opendir(root) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix("jail-\(getpid())-") { found.append(root + "/" + name) }
            }
        }
        return found
    }

    /// Host processes in one of this test process's jail cgroups. Matching on the cgroup (not
    /// only the jail uid range) keeps jails that other test processes on the host run from
    /// counting; a process cannot leave its jail's cgroup, and a cgroup with a process in it
    /// cannot be removed, so a survivor shows up here or in `leftoverCgroups`.
    static func ourJailProcesses() -> [String] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var found: [String] = []
        while let entry = readdir(dir) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(pid) != nil, let cgroups = try? IsolationTests.readFile("/proc/\(pid)/cgroup") else { continue }
            if cgroups.contains("/edgy-test/jail-\(getpid())-") {
                let status = (try? IsolationTests.readFile("/proc/\(pid)/status")) ?? ""
                found.append(pid + " " + (status.split(separator: "\n").first.map(String.init) ?? ""))
            }
        }
        return found
    }

    static func seconds(since start: UInt64) -> Double { Double(monotonicNanos() - start) / 1e9 }

    /// posix_spawns /bin/true on the host and waits for it; returns the seconds it took.
    static func hostTrue() -> Double {
        let start = monotonicNanos()
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(argv[0]) }
        guard posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ) == 0 else { return .infinity }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status == 0 ? seconds(since: start) : .infinity
    }

    @Test func memoryBombEndsAtTheMemoryLimit() async throws {
        // Writing the bytes (b"x" * n) makes every page resident, unlike a zero-filled calloc.
        let script = "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))\n"
        let policy = TestSupport.policy(["/usr/bin/python3", "-c", script]) { policy in
            policy.limits.memoryMib = 64
            policy.limits.wallTimeS = 30
        }
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.outcome == .memoryLimit, "\(report.outcome) \(report.stderrText)")
        #expect(report.oomKills >= 1)
        let peak = try #require(report.memoryPeakBytes)
        let limit: UInt64 = 64 << 20
        #expect(peak >= limit * 3 / 4 && peak <= limit + (1 << 20), "peak \(peak) for a limit of \(limit)")
        #expect(report.wallMs < 20_000)
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }

    @Test func forkBombIsHeldByThePidsLimitAndTheHostStaysResponsive() async throws {
        let supervisor = try TestSupport.supervisor()
        // The classic bomb, then the main shell keeps forking so the bomb never stops pushing.
        let script = "b() { b | b & }; b; while :; do /bin/true; done"
        let policy = TestSupport.policy(["/bin/sh", "-c", script]) { policy in
            policy.limits.pids = 16
            policy.limits.wallTimeS = 3
            policy.limits.cpuTimeS = 60
        }
        let started = monotonicNanos()
        let jail = Task { await supervisor.run(JailRequest(policy: policy)) }
        try await Task.sleep(for: .milliseconds(1000))
        var hostSpawns: [Double] = []
        for _ in 0..<5 {
            hostSpawns.append(Self.hostTrue())
            try await Task.sleep(for: .milliseconds(100))
        }
        let report = await jail.value
        let elapsed = Self.seconds(since: started)

        #expect(hostSpawns.allSatisfy { $0 < 0.5 * TestSupport.timeScale }, "host /bin/true took \(hostSpawns) s during the bomb")
        #expect(report.pidsLimitHits >= 1, "\(report)")
        if let peak = report.pidsPeak { #expect(peak <= 16, "pids peak \(peak)") }
        #expect([.wallTimeout, .exited, .signaled].contains(report.outcome), "\(report.outcome) \(report.setup?.description ?? "")")
        #expect(elapsed < 8, "took \(elapsed) s")
        try await Task.sleep(for: .milliseconds(100))
        #expect(Self.ourJailProcesses().isEmpty, "survivors: \(Self.ourJailProcesses())")
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }

    @Test func cpuSpinEndsAtTheCPULimitLongBeforeTheWallLimit() async throws {
        let started = monotonicNanos()
        let report = try await TestSupport.sh("while :; do :; done") { policy in
            policy.limits.cpuTimeS = 1
            policy.limits.wallTimeS = 60
        }
        let elapsed = Self.seconds(since: started)
        #expect(report.outcome == .cpuTimeout, "\(report.outcome)")
        #expect(elapsed < 10, "took \(elapsed) s")
        #expect(report.cpuUserMs + report.cpuSysMs >= 900, "cpu \(report.cpuUserMs)+\(report.cpuSysMs) ms")
    }

    @Test func multiProcessSpinIsCaughtByTheGroupsCPUTime() async throws {
        // Each child stops by itself at 0.7 s of CPU, under the 1 s RLIMIT_CPU, so no single
        // process ever trips the rlimit: only the cgroup's total (3 × 0.7 s) can end this attempt.
        // Without the group accounting it would print "done" and exit 0.
        let child = "/usr/bin/python3 -c 'import time\nwhile time.process_time() < 0.7: pass'"
        let started = monotonicNanos()
        let report = try await TestSupport.sh("\(child) & \(child) & \(child) & wait; echo done") { policy in
            policy.limits.cpuTimeS = 1
            policy.limits.wallTimeS = 60
        }
        let elapsed = Self.seconds(since: started)
        #expect(report.outcome == .cpuTimeout, "\(report.outcome) \(report.stdoutText) \(report.stderrText)")
        #expect(!report.stdoutText.contains("done"))
        #expect(elapsed < 10, "took \(elapsed) s")
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }

    @Test func daemonsAndStoppedProcessesAndTheCgroupAreGoneAfterTheAttempt() async throws {
        let supervisor = try TestSupport.supervisor()
        let script = "(sleep 300 &) ; sh -c 'kill -STOP $$; sleep 302' & sleep 2; echo started"
        let jail = Task { await supervisor.run(JailRequest(policy: TestSupport.policy(["/bin/sh", "-c", script]))) }
        // While it runs, its cgroup exists in every controller hierarchy (v1) or once (v2).
        #expect(!Self.controllerRoots.isEmpty)
        // Sampled until the daemon, the stopped shell and the main one are all there (a slow or
        // emulated host needs longer than a fixed pause); the jail lives 2 s.
        var during: [String] = []
        var processesDuring: [String] = []
        let deadline = ContinuousClock.now + .milliseconds(1800)
        repeat {
            try await Task.sleep(for: .milliseconds(20))
            during = Self.leftoverCgroups()
            processesDuring = Self.ourJailProcesses()
        } while processesDuring.count < 3 && ContinuousClock.now < deadline
        let report = await jail.value
        #expect(report.outcome == .exited && report.stdoutText == "started\n", "\(report.outcome) \(report.stdoutText) \(report.stderrText)")
        #expect(during.count == Self.controllerRoots.count, "during the attempt: \(during)")
        // The check below can see jail processes: the daemon, the stopped shell and the main one.
        #expect(processesDuring.count >= 3, "during the attempt: \(processesDuring)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(Self.ourJailProcesses().isEmpty, "survivors: \(Self.ourJailProcesses())")
        #expect(Self.leftoverCgroups().isEmpty, "left behind: \(Self.leftoverCgroups())")
    }

    @Test func sixteenConcurrentJailsEachHaveTheirOwnCgroupAndFiles() async throws {
        let supervisor = try TestSupport.supervisor()
        let fdsBefore = TestSupport.openDescriptorCount()
        let count = 16
        let sampler = Task {
            // The most jail cgroups seen at once while the jails sleep.
            var most = 0
            for _ in 0..<40 {
                // One group per jail: on v1 count the memory hierarchy's copies only.
                most = max(most, Set(Self.leftoverCgroups().filter { Self.controllerRoots.count == 1 || $0.contains("/memory/") }).count)
                try? await Task.sleep(for: .milliseconds(50))
            }
            return most
        }
        let reports = await withTaskGroup(of: (Int, AttemptReport).self) { group in
            for i in 0..<count {
                group.addTask {
                    let policy = TestSupport.policy(["/bin/sh", "-c", "sleep 1; ls; cat mine.txt"]) { $0.limits.wallTimeS = 30 }
                    let files = [TaskFile(path: "mine.txt", contents: Array("jail \(i)\n".utf8)), TaskFile(path: "only-\(i)", contents: [])]
                    return (i, await supervisor.run(JailRequest(policy: policy, files: files)))
                }
            }
            var out: [(Int, AttemptReport)] = []
            for await result in group { out.append(result) }
            return out
        }
        let mostAtOnce = await sampler.value
        #expect(reports.count == count)
        for (i, report) in reports {
            #expect(report.outcome == .exited && report.exitCode == 0, "jail \(i): \(report.outcome) \(report.setup?.description ?? "")")
            #expect(report.stdoutText == "mine.txt\nonly-\(i)\njail \(i)\n", "jail \(i): \(report.stdoutText) \(report.stderrText)")
        }
        #expect(mostAtOnce == count, "saw at most \(mostAtOnce) jail cgroups at once")
        #expect(TestSupport.openDescriptorCount() == fdsBefore)
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }
}
