import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Testing

/// What a process inside a real jail can see and do. Each test runs the thing it says is blocked.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(1)))
struct IsolationTests {
    @Test func seesOnlyItsOwnProcesses() async throws {
        let report = try await TestSupport.sh("for p in /proc/[0-9]*; do echo ${p#/proc/}; done")
        #expect(report.outcome == .exited)
        let pids = report.stdoutText.split(separator: "\n").compactMap { Int($0) }
        #expect(pids.contains(1), "the workload is PID 1 of its namespace")
        #expect(pids.allSatisfy { $0 < 10 }, "host processes are visible: \(pids)")
    }

    @Test func cannotReadRootsHomeOrTheHostsShadowFile() async throws {
        let report = try await TestSupport.sh("cat /etc/shadow; echo rc=$?; ls /root; echo rc=$?")
        #expect(report.stdoutText.contains("rc=1\n") || report.stdoutText.contains("rc=2\n"))
        #expect(!report.stdoutText.contains("rc=0"), "\(report.stdoutText)")
        #expect(!report.stdoutText.contains("root:"))
    }

    @Test func cannotReadShadowEvenWhenEtcIsMounted() async throws {
        #expect(FileSystem.exists("/etc/shadow"))
        let report = try await TestSupport.sh("cat /etc/shadow >/dev/null; echo rc=$?") { policy in
            policy.mounts.append(Policy.Mount(source: "/etc"))
        }
        #expect(report.stdoutText == "rc=1\n", "\(report.stdoutText) \(report.stderrText)")
        #expect(report.stderrText.contains("Permission denied"))
    }

    @Test(arguments: ["/x", "/usr/x", "/etc/x", "/dev/x", "/proc/x", "/usr/bin/sh"])
    func cannotWriteOutsideTmpAndWorkdir(path: String) async throws {
        let report = try await TestSupport.sh("echo data > \(path) && echo written")
        #expect(report.outcome == .exited)
        #expect(report.exitCode != 0)
        #expect(!report.stdoutText.contains("written"))
    }

    @Test(arguments: ["/tmp/x", "/work/x", "/dev/shm/x"])
    func canWriteItsScratchSpace(path: String) async throws {
        let report = try await TestSupport.sh("echo data > \(path) && cat \(path)")
        #expect(report.exitCode == 0, "\(report.stderrText)")
        #expect(report.stdoutText == "data\n")
    }

    @Test func hasNoNetworkInterfaceButLoopback() async throws {
        let report = try await TestSupport.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
        #expect(report.stdoutText == "lo\n")
    }

    @Test func loopbackIsDownWithNoNetworkAndUpWithLoopback() async throws {
        let none = try await TestSupport.sh("cat /sys/class/net/lo/operstate 2>/dev/null; /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); c=socket.create_connection(s.getsockname()); print(\"connected\")'")
        #expect(!none.stdoutText.contains("connected"))
        let loopback = try await TestSupport.sh("/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); c=socket.create_connection(s.getsockname()); print(\"connected\")'") { policy in
            policy.network.mode = .loopback
        }
        #expect(loopback.stdoutText == "connected\n", "\(loopback.stderrText)")
    }

    @Test func hasItsOwnHostname() async throws {
        let report = try await TestSupport.sh("hostname") { $0.run.hostname = "sandbox-7" }
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let hostHostname = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(report.stdoutText == "sandbox-7\n")
        #expect(hostHostname != "sandbox-7")
    }

    @Test func hasNoCapabilitiesNoNewPrivsAndASeccompFilter() async throws {
        let report = try await TestSupport.sh("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status")
        let fields = Dictionary(uniqueKeysWithValues: report.stdoutText.split(separator: "\n").map { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), String(parts[1].drop { $0 == " " || $0 == "\t" }))
        })
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(fields[cap] == "0000000000000000", "\(cap) = \(fields[cap] ?? "missing")")
        }
        #expect(fields["NoNewPrivs"] == "1")
        #expect(fields["Seccomp"] == "2")
    }

    @Test func runsAsTheUnprivilegedUIDInsideAndOnTheHost() async throws {
        let supervisor = try TestSupport.supervisor()
        let base = supervisor.host.hostIDBase
        let policy = TestSupport.policy(["/bin/sh", "-c", "id -u; id -g; exec sleep 3"])
        async let report = supervisor.run(JailRequest(policy: policy))
        // Find the jailed `sleep` from the host side and read its real ids.
        var hostUID: String?
        for _ in 0..<100 where hostUID == nil {
            try await Task.sleep(for: .milliseconds(20))
            hostUID = Self.hostUIDOfProcess(named: "sleep", minimumUID: base)
        }
        let finished = await report
        #expect(finished.stdoutText == "65534\n65534\n")
        #expect(hostUID == String(base + 65534), "host uid \(hostUID ?? "not found")")
    }

    @Test func inheritsNoDescriptorsBeyondStdio() async throws {
        let before = TestSupport.openDescriptorCount()
        let report = try await TestSupport.sh("/usr/bin/python3 -c 'import os; print(sorted(int(f) for f in os.listdir(\"/proc/self/fd\")))'")
        // listdir holds one fd of its own: 3.
        #expect(report.stdoutText == "[0, 1, 2, 3]\n", "\(report.stdoutText) \(report.stderrText)")
        #expect(TestSupport.openDescriptorCount() == before, "the supervisor leaked descriptors")
    }

    @Test func findsItsFilesWithContentsAndModes() async throws {
        let files = [
            TaskFile(path: "main.sh", contents: Array("echo from main\n".utf8), mode: 0o755),
            TaskFile(path: "data/input.txt", contents: Array("line one\nline two\n".utf8), mode: 0o600),
            TaskFile(path: "data/nested/deep.bin", contents: [0, 1, 2, 255], mode: 0o640),
        ]
        let report = try await TestSupport.sh(
            "./main.sh; stat -c '%n %a %s %u' main.sh data/input.txt data/nested/deep.bin; cat data/input.txt; od -An -tu1 data/nested/deep.bin; echo more >> data/input.txt && echo appended",
            files: files)
        #expect(report.exitCode == 0, "\(report.stderrText)")
        #expect(report.stdoutText == """
            from main
            main.sh 755 15 65534
            data/input.txt 600 18 65534
            data/nested/deep.bin 640 4 65534
            line one
            line two
               0   1   2 255
            appended

            """)
    }

    @Test func environmentIsOnlyThePolicys() async throws {
        setenv("EDGY_SECRET_TEST_VAR", "leak", 1)
        let report = try await TestSupport.sh("env | sort") { $0.run.env = ["PATH": "/usr/bin:/bin", "ONLY": "this"] }
        #expect(report.stdoutText.split(separator: "\n").filter { !$0.hasPrefix("PWD=") && !$0.hasPrefix("SHLVL=") && !$0.hasPrefix("_=") } == ["ONLY=this", "PATH=/usr/bin:/bin"])
    }

    @Test func stdinReachesTheWorkload() async throws {
        let report = try await TestSupport.sh("wc -c; cat", stdin: Array("hello stdin\n".utf8))
        #expect(report.stdoutText == "12\n")
    }

    static func hostUIDOfProcess(named name: String, minimumUID: UInt32) -> String? {
        guard let dir = opendir("/proc") else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(pid) != nil, let status = try? readFile("/proc/\(pid)/status") else { continue }
            guard status.contains("Name:\t\(name)\n") else { continue }
            for line in status.split(separator: "\n") where line.hasPrefix("Uid:") {
                let uid = line.split(separator: "\t")[1]
                if let value = UInt32(uid), value >= minimumUID { return String(uid) }
            }
        }
        return nil
    }

    static func readFile(_ path: String) throws -> String {
        guard let file = fopen(path, "r") else { throw Errno() }
        defer { fclose(file) }
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            out.append(contentsOf: buffer[..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    struct Errno: Error {}
}
