import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySystem
import EdgyTestSupport
import Glibc
import Testing

/// Limits that hold and endings that are named precisely, with real jails.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct SupervisionTests {
    @Test func wallTimeoutEndsTheJailPromptly() async throws {
        let started = monotonicNanos()
        let report = try await TestSupport.sh("sleep 1000") { $0.limits.wallTimeS = 1 }
        let elapsed = Double(monotonicNanos() - started) / 1e9
        #expect(report.outcome == .wallTimeout)
        #expect(elapsed < 2, "took \(elapsed) s")
        #expect(report.wallMs >= 1000)
    }

    @Test func signaledWorkloadIsReportedWithItsSignal() async throws {
        // The workload is PID 1 of its namespace, which ignores signals from inside it that it has
        // no handler for; a fault the kernel raises still kills it.
        let report = try await TestSupport.sh("exec /usr/bin/python3 -c 'import ctypes; ctypes.string_at(0)'")
        #expect(report.outcome == .signaled)
        #expect(report.signal == SIGSEGV)
        #expect(report.signalName == "SIGSEGV")
    }

    @Test func cancellationKillsARunningJail() async throws {
        let supervisor = try TestSupport.supervisor()
        let policy = TestSupport.policy(["/bin/sleep", "1000"])
        let started = monotonicNanos()
        let task = Task { await supervisor.run(JailRequest(policy: policy)) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let report = await task.value
        #expect(report.outcome == .cancelled)
        #expect(Double(monotonicNanos() - started) / 1e9 < 2)
    }

    @Test func outputPastTheCapIsCountedNotKept() async throws {
        let report = try await TestSupport.sh("head -c 5000000 /dev/zero; echo done >&2") { policy in
            policy.limits.stdoutKib = 64
        }
        #expect(report.outcome == .exited)
        #expect(report.stdout.count == 64 * 1024)
        #expect(report.stdoutTruncatedBytes == UInt64(5_000_000 - 64 * 1024))
        #expect(report.stderrText == "done\n")
    }

    @Test func outputOverflowCanKill() async throws {
        let report = try await TestSupport.sh("yes") { policy in
            policy.limits.stdoutKib = 16
            policy.limits.outputOverflow = .kill
        }
        #expect(report.outcome == .outputLimit)
        #expect(report.stdout.count == 16 * 1024)
    }

    @Test func aFloodOfGigabytesLeavesTheSupervisorsMemoryFlat() async throws {
        let report = try await TestSupport.sh("head -c 2147483648 /dev/zero") { policy in
            policy.limits.stdoutKib = 1024
            policy.limits.wallTimeS = 60
        }
        #expect(report.outcome == .exited, "\(report.outcome) \(report.stderrText)")
        #expect(report.stdout.count == 1024 * 1024)
        #expect(report.stdoutTruncatedBytes == 2_147_483_648 - 1024 * 1024)
        let rssKib = Self.selfStatus("VmHWM:")
        #expect(rssKib < 64 * 1024, "supervisor peak RSS \(rssKib) KiB")
    }

    @Test func detachedAndStoppedProcessesDieWithTheJail() async throws {
        let supervisor = try TestSupport.supervisor()
        let base = supervisor.host.hostIDBase
        // A double-forked daemon, a setsid'ed one and a stopped one, then the main process exits.
        let script = "(sleep 300 &) ; setsid sleep 301 & sh -c 'kill -STOP $$; sleep 302' & sleep 0.2; echo started"
        let report = await supervisor.run(JailRequest(policy: TestSupport.policy(["/bin/sh", "-c", script])))
        #expect(report.stdoutText == "started\n")
        try await Task.sleep(for: .milliseconds(100))
        #expect(Self.hostProcesses(withUIDAtLeast: base).isEmpty, "survivors: \(Self.hostProcesses(withUIDAtLeast: base))")
    }

    @Test func eightConcurrentJailsSeeOnlyTheirOwnFiles() async throws {
        let supervisor = try TestSupport.supervisor()
        let fdsBefore = TestSupport.openDescriptorCount()
        let reports = await withTaskGroup(of: (Int, AttemptReport).self) { group in
            for i in 0..<8 {
                group.addTask {
                    let policy = TestSupport.policy(["/bin/sh", "-c", "sleep 0.2; ls; cat mine.txt"])
                    let files = [TaskFile(path: "mine.txt", contents: Array("jail \(i)\n".utf8)), TaskFile(path: "only-\(i)", contents: [])]
                    return (i, await supervisor.run(JailRequest(policy: policy, files: files)))
                }
            }
            var out: [(Int, AttemptReport)] = []
            for await result in group { out.append(result) }
            return out
        }
        #expect(reports.count == 8)
        for (i, report) in reports {
            #expect(report.stdoutText == "mine.txt\nonly-\(i)\njail \(i)\n", "jail \(i): \(report.stdoutText) \(report.stderrText)")
        }
        #expect(TestSupport.openDescriptorCount() == fdsBefore)
    }

    static func hostProcesses(withUIDAtLeast base: UInt32) -> [String] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var found: [String] = []
        while let entry = readdir(dir) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(pid) != nil, let status = try? IsolationTests.readFile("/proc/\(pid)/status") else { continue }
            for line in status.split(separator: "\n") where line.hasPrefix("Uid:") {
                if let uid = UInt32(line.split(separator: "\t")[1]), uid >= base, uid < base + 65536 {
                    found.append(pid + " " + (status.split(separator: "\n").first.map(String.init) ?? ""))
                }
            }
        }
        return found
    }

    static func selfStatus(_ key: String) -> Int {
        guard let status = try? IsolationTests.readFile("/proc/self/status") else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix(key) {
            return Int(line.dropFirst(key.count).split(separator: " ").first ?? "") ?? -1
        }
        return -1
    }
}
