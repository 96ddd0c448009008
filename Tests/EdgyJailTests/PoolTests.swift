import EdgyCgroup
import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySystem
import EdgyTestSupport
import Glibc
import Testing

/// The jail pool: a jail parked at its gate and given its plan later behaves exactly like one
/// cloned on demand, the pool refills, and nothing of it survives `shutdown()`.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct PoolTests {
    static func pooled() throws -> JailSupervisor {
        try JailSupervisor(host: JailHostConfiguration(poolSize: 2), cgroups: TestSupport.sharedCgroups())
    }

    /// Waits up to 10 s for `supervisor` to have `count` parked jails.
    static func waitParked(_ supervisor: JailSupervisor, _ count: Int) async throws -> Bool {
        for _ in 0..<200 {
            if supervisor.parkedJails >= count { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    static func run(_ supervisor: JailSupervisor, _ script: String, files: [TaskFile] = [],
                    configure: (inout Policy) -> Void = { _ in }) async -> AttemptReport {
        let policy = TestSupport.policy(["/bin/sh", "-c", script], configure: configure)
        return await supervisor.run(JailRequest(policy: policy, files: files))
    }

    @Test func aPooledJailBehavesLikeAnUnpooledOne() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let plain = try TestSupport.supervisor()
        let script = "id -u; id -g; cat mine.txt; stat -c '%a %u' mine.txt; hostname; ls /; echo $HOME; cat /proc/self/status | grep -c Seccomp:.2"
        let files = [TaskFile(path: "mine.txt", contents: Array("hello\n".utf8), mode: 0o640)]
        // The first request of a shape spawns on demand and starts the pool.
        _ = await Self.run(pooled, "true")
        #expect(try await Self.waitParked(pooled, 2))
        let fromPool = await Self.run(pooled, script, files: files)
        let onDemand = await Self.run(plain, script, files: files)
        #expect(fromPool.outcome == .exited && fromPool.exitCode == 0, "\(fromPool.stderrText)")
        #expect(fromPool.stdoutText == onDemand.stdoutText)
        #expect(fromPool.stdoutText.hasPrefix("65534\n65534\nhello\n640 65534\nedgy\n"), "\(fromPool.stdoutText)")
    }

    /// Filesystem plans are kept between attempts (`FilesystemPlanCache`): policies that differ in
    /// one mount or one tmpfs size, run in turn within a second on one supervisor, each get their
    /// own filesystem, pooled or not.
    @Test func policiesRunInTurnEachGetTheirOwnFilesystem() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let plain = try TestSupport.supervisor()
        let withDoc: (inout Policy) -> Void = {
            $0.mounts.append(Policy.Mount(source: TestSupport.repositoryRoot + "/policies", destination: "/opt/policies"))
        }
        let bigTmp: (inout Policy) -> Void = { $0.limits.tmpMib = 40 }
        let script = "ls /opt/policies/default.toml 2>/dev/null || echo no-doc; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2"
        for supervisor in [pooled, plain] {
            var seen: [String] = []
            for _ in 0..<3 {
                for configure in [withDoc, bigTmp, { _ in }] as [(inout Policy) -> Void] {
                    let report = await Self.run(supervisor, script, configure: configure)
                    #expect(report.outcome == .exited, "\(report.stderrText)")
                    seen.append(report.stdoutText)
                }
            }
            let defaultTmp = TestSupport.policy(["/bin/true"]).limits.tmpMib
            let expected = ["/opt/policies/default.toml\n\(defaultTmp << 10)\n", "no-doc\n\(40 << 10)\n", "no-doc\n\(defaultTmp << 10)\n"]
            #expect(seen == expected + expected + expected, "\(seen)")
        }
    }

    @Test func aPooledJailKeepsItsCgroupLimits() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let hog = "exec /usr/bin/python3 -c 'b = bytearray(200 << 20); print(len(b))'"
        let small: (inout Policy) -> Void = { $0.limits.memoryMib = 64 }
        _ = await Self.run(pooled, "true", configure: small)
        #expect(try await Self.waitParked(pooled, 2))
        let report = await Self.run(pooled, hog, configure: small)
        #expect(report.outcome == .memoryLimit, "\(report.outcome) \(report.stdoutText) \(report.stderrText)")
        // A different limit is a different shape: never served by a jail of the 64 MiB pool.
        let roomy = await Self.run(pooled, hog) { $0.limits.memoryMib = 512 }
        #expect(roomy.outcome == .exited && roomy.stdoutText == "\(200 << 20)\n", "\(roomy.outcome) \(roomy.stderrText)")
    }

    @Test func setupErrorsFromAPooledJailKeepTheirStage() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        _ = await Self.run(pooled, "true")
        #expect(try await Self.waitParked(pooled, 2))
        let missingMount = await Self.run(pooled, "true") { $0.mounts.append(Policy.Mount(source: "/nonexistent-edgy-source")) }
        #expect(missingMount.outcome == .setupError)
        #expect(missingMount.setup?.stage == "filesystem", "\(String(describing: missingMount.setup))")
        #expect(missingMount.setup?.detail == "mount /nonexistent-edgy-source")
        #expect(try await Self.waitParked(pooled, 2))
        let policy = TestSupport.policy(["/bin/no-such-program"])
        let missingProgram = await pooled.run(JailRequest(policy: policy))
        #expect(missingProgram.setup?.stage == "execve")
        #expect(missingProgram.setup?.errno == "ENOENT")
    }

    @Test func thePoolRefillsAfterEachJail() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        #expect(pooled.parkedJails == 0, "the pool fills on first use, not at init")
        for _ in 0..<3 {
            let report = await Self.run(pooled, "echo ok")
            #expect(report.stdoutText == "ok\n")
            #expect(try await Self.waitParked(pooled, 2))
        }
    }

    /// What the workload sees of its filesystem, without what differs between any two mounts of
    /// the same thing (mount ids, anonymous device numbers, times).
    static let filesystemProbe = """
        awk '{ $1 = ""; $2 = ""; $3 = ""; print }' /proc/self/mountinfo
        find / -xdev -maxdepth 1 -exec stat -c '%n %a %u %g %F' {} +
        find /dev /etc /tmp /work -exec stat -c '%n %a %u %g %F %s' {} +
        df -k /tmp /work /dev/shm | awk '{ print $1, $2, $6 }'
        hostname; id
        """

    @Test func aParkedJailsPrebuiltFilesystemIsTheOnDemandOne() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let plain = try TestSupport.supervisor()
        let files = [TaskFile(path: "sub/dir/f.txt", contents: Array("x\n".utf8), mode: 0o600)]
        _ = await Self.run(pooled, "true")
        #expect(try await Self.waitParked(pooled, 2))
        // Parked long enough for anything time-dependent to show.
        try await Task.sleep(for: .milliseconds(200))
        let fromPool = await Self.run(pooled, Self.filesystemProbe, files: files)
        let onDemand = await Self.run(plain, Self.filesystemProbe, files: files)
        #expect(fromPool.outcome == .exited && fromPool.exitCode == 0, "\(fromPool.stderrText)")
        #expect(onDemand.outcome == .exited && onDemand.exitCode == 0, "\(onDemand.stderrText)")
        #expect(fromPool.stdoutText == onDemand.stdoutText)
        // The probe saw the mounts, the task's files and their owner.
        #expect(fromPool.stdoutText.contains(" / / ro,"), "\(fromPool.stdoutText)")
        #expect(fromPool.stdoutText.contains("/work/sub/dir/f.txt 600 65534 65534 regular file 2"), "\(fromPool.stdoutText)")
        #expect(fromPool.stdoutText.contains("/dev/null 666"), "\(fromPool.stdoutText)")
    }

    @Test func aParkedJailIsNeverServedToAPolicyWithAnotherFilesystem() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let first: (inout Policy) -> Void = { $0.run.hostname = "first" }
        _ = await Self.run(pooled, "true", configure: first)
        #expect(try await Self.waitParked(pooled, 2))
        // Same namespaces and cgroup limits, other hostname, tmpfs size or network: other shapes.
        let renamed = await Self.run(pooled, "hostname") { $0.run.hostname = "second" }
        #expect(renamed.stdoutText == "second\n", "\(renamed.stdoutText) \(renamed.stderrText)")
        let bigTmp = await Self.run(pooled, "df -k /tmp | awk 'NR == 2 { print $2 }'") {
            $0.run.hostname = "first"
            $0.limits.tmpMib = 7
        }
        #expect(bigTmp.stdoutText == "\(7 * 1024)\n", "\(bigTmp.stdoutText) \(bigTmp.stderrText)")
        // 127.0.0.1 exists only once loopback is up.
        let connect = "exec /usr/bin/python3 -c \"import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); socket.create_connection(s.getsockname()); print('up')\""
        let loopback = await Self.run(pooled, connect) {
            $0.run.hostname = "first"
            $0.network.mode = .loopback
        }
        #expect(loopback.stdoutText == "up\n", "\(loopback.stdoutText) \(loopback.stderrText)")
        let none = await Self.run(pooled, connect, configure: first)
        #expect(none.stdoutText.isEmpty)
        let same = await Self.run(pooled, "hostname", configure: first)
        #expect(same.stdoutText == "first\n")
    }

    @Test func aTaskFileThatCannotBeWrittenNamesItsOp() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        _ = await Self.run(pooled, "true")
        #expect(try await Self.waitParked(pooled, 2))
        // "a" is a file, so "a/b" cannot be created under it.
        let files = [TaskFile(path: "a", contents: [], mode: 0o644), TaskFile(path: "a/b", contents: [], mode: 0o644)]
        let report = await Self.run(pooled, "true", files: files)
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "task files", "\(String(describing: report.setup))")
        #expect(report.setup?.detail == "write /work/a/b")
        #expect(report.setup?.errno == "ENOTDIR")
        // The jail that failed is gone with its cgroup; the pool serves the next request.
        #expect(try await Self.waitParked(pooled, 2))
        let next = await Self.run(pooled, "echo fine")
        #expect(next.stdoutText == "fine\n")
    }

    @Test func nothingOfThePoolSurvivesShutdown() async throws {
        let fdsBefore = TestSupport.openDescriptorCount()
        let pooled = try Self.pooled()
        _ = await Self.run(pooled, "true")
        #expect(try await Self.waitParked(pooled, 2))
        #expect(!Self.ourChildren().isEmpty, "the parked jails are our children")
        pooled.shutdown()
        #expect(pooled.parkedJails == 0)
        #expect(Self.ourChildren().isEmpty, "survivors: \(Self.ourChildren())")
        #expect(Self.processes(withUIDAtLeast: 1_000_000_000).isEmpty)
        #expect(Self.ourCgroups().isEmpty, "cgroups left: \(Self.ourCgroups())")
        #expect(TestSupport.openDescriptorCount() == fdsBefore)
        // Later requests still work, on demand.
        let report = await Self.run(pooled, "echo after")
        #expect(report.stdoutText == "after\n")
        #expect(Self.ourCgroups().isEmpty)
    }

    // ---- /proc and cgroupfs helpers ----------------------------------------------------------

    static func statusFields(_ pid: String) -> [String: String] {
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [:] }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = read(fd, &bytes, bytes.count)
        guard n > 0 else { return [:] }
        var fields: [String: String] = [:]
        for line in String(decoding: bytes[..<n], as: UTF8.self).split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })
            fields[String(line[..<colon])] = String(value)
        }
        return fields
    }

    static func allPids() -> [String] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let first = name.utf8.first, first >= 48 && first <= 57 { pids.append(name) }
        }
        return pids
    }

    /// Live (not zombie) children of this process.
    /// Live children of this process, but for the fork server that other suites leave running
    /// (it is started once per process and lives as long as it).
    static func ourChildren() -> [String] {
        let me = String(getpid())
        let server = ForkServer.existing(executable: ForkServerTests.executable).map { String($0.pid) }
        return allPids().filter { pid in
            let f = statusFields(pid)
            return f["PPid"] == me && !(f["State"] ?? "").hasPrefix("Z") && pid != server
        }
    }

    static func processes(withUIDAtLeast base: UInt32) -> [String] {
        allPids().filter { pid in
            guard let uid = statusFields(pid)["Uid"]?.split(separator: "\t").first, let value = UInt32(uid) else { return false }
            return value >= base
        }
    }

    /// Jail and pool cgroups of this process under the tests' parent group, in any hierarchy.
    static func ourCgroups() -> [String] {
        var found: [String] = []
        for controller in ["freezer", "memory", "pids", "cpu", "cpuacct", "unified"] {
            let parent = "/sys/fs/cgroup/\(controller)/edgy-test"
            guard let dir = opendir(parent) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name.hasPrefix("pool-\(getpid())-") || name.hasPrefix("jail-\(getpid())-") {
                    found.append("\(controller)/\(name)")
                }
            }
        }
        return found
    }
}
