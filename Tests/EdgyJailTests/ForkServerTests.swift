import CEdgyJail
import EdgyCgroup
import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Testing

/// Jails cloned by `edgy-forkserver` against jails cloned in process: the same jail, and a server
/// that dies or hangs costs no attempt.
@Suite(.tags(.root), .requiresRoot, .serialized, .timeLimit(.minutes(2)))
struct ForkServerTests {
    static var executable: String { TestSupport.productsDirectory + "/edgy-forkserver" }

    static func supervisor(forkServer: Bool, poolSize: Int = 0, idCount: UInt32 = 65536) throws -> JailSupervisor {
        var host = JailHostConfiguration(idCount: idCount, poolSize: poolSize)
        host.forkServer = forkServer ? executable : nil
        return try JailSupervisor(host: host, cgroups: TestSupport.sharedCgroups())
    }

    /// Everything a workload can observe about its jail, minus what differs between any two jails
    /// (mount ids, device numbers of fresh tmpfs, namespace inodes, which are compared with the
    /// host's: not with each other, since a dead jail's inode numbers are reused).
    static let fingerprint = """
        grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters|NSpid|NSsid|SigBlk|SigIgn|SigCgt):' /proc/self/status
        cut -d' ' -f4- /proc/self/mountinfo
        cat /proc/self/uid_map /proc/self/gid_map /proc/self/cgroup
        ulimit -a; umask; pwd; hostname; env | sort
        ls /proc/self/fd
        tail -n +3 /proc/net/dev | cut -d: -f1
        """

    static func namespaces(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    static let namespaceNames = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]

    static func hostNamespace(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/self/ns/\(name)", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    @Test func aForkServerJailIsTheSameJailAsAnInProcessOne() async throws {
        let inProcess = try Self.supervisor(forkServer: false)
        let forked = try Self.supervisor(forkServer: true)
        defer {
            inProcess.shutdown()
            forked.shutdown()
        }
        let server = try #require(forked.forkServer)
        #expect(server.waitUntilRunning(), "\(server.lastError ?? "")")
        let servedBefore = server.served

        let script = Self.fingerprint + "\nfor n in \(Self.namespaceNames.joined(separator: " ")); do echo \"NS $n $(readlink /proc/self/ns/$n)\"; done"
        let policy = TestSupport.policy(["/bin/sh", "-c", script])
        let a = await inProcess.run(JailRequest(policy: policy))
        let b = await forked.run(JailRequest(policy: policy))
        #expect(server.served == servedBefore + 1, "the fork server cloned the jail")
        #expect(a.outcome == .exited && a.exitCode == 0, "\(a.stderrText)")
        #expect(b.outcome == .exited && b.exitCode == 0, "\(b.stderrText)")

        func split(_ text: String) -> (Substring, [String: String]) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let plain = lines.filter { !$0.hasPrefix("NS ") }.joined(separator: "\n")
            let ns = Self.namespaces(lines.filter { $0.hasPrefix("NS ") }.map { $0.dropFirst(3) }.joined(separator: "\n")[...])
            return (plain[...], ns)
        }
        let (aText, aNS) = split(a.stdoutText)
        let (bText, bNS) = split(b.stdoutText)
        #expect(aText == bText)
        #expect(aText.contains("CapBnd:\t0000000000000000") && aText.contains("NoNewPrivs:\t1") && aText.contains("Seccomp:\t2"))
        for name in Self.namespaceNames {
            let host = Self.hostNamespace(name)
            #expect(aNS[name] != nil && aNS[name] != host, "in process: \(name) \(aNS[name] ?? "-") vs host \(host)")
            #expect(bNS[name] != nil && bNS[name] != host, "fork server: \(name) \(bNS[name] ?? "-") vs host \(host)")
        }
        // Both in a cgroup of their own, with its counters in the report.
        #expect(a.memoryPeakBytes != nil && b.memoryPeakBytes != nil)
        #expect(a.pidsPeak != nil && b.pidsPeak != nil)
    }

    @Test func theSeccompFilterAndTheLimitsHoldInForkServerJails() async throws {
        let forked = try Self.supervisor(forkServer: true)
        defer { forked.shutdown() }
        let probe = TestSupport.withProbe(TestSupport.policy([TestSupport.probe, "syscall", "ptrace"]))
        let blocked = await forked.run(JailRequest(policy: probe))
        #expect(blocked.outcome == .seccompViolation)
        #expect(blocked.seccompSyscall == "ptrace")
        let bomb = TestSupport.policy(["/bin/sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"]) { policy in
            policy.limits.pids = 8
            policy.limits.wallTimeS = 3
        }
        let limited = await forked.run(JailRequest(policy: bomb))
        #expect(limited.pidsLimitHits > 0, "\(limited.outcome) \(limited.stderrText)")
        #expect((limited.pidsPeak ?? 99) <= 8)
    }

    /// v1: the server clones from inside the jail's groups, so the child needs no attach, and goes
    /// back to its own groups after every clone. (v2 clones into the group with CLONE_INTO_CGROUP.)
    @Test func theServerClonesFromInsideTheJailsGroupsAndGoesBack() async throws {
        let forked = try Self.supervisor(forkServer: true)
        defer { forked.shutdown() }
        let server = try #require(forked.forkServer)
        #expect(server.waitUntilRunning())
        let home = try #require(server.cgroupTable)
        let joined = server.joinedCgroups
        let bomb = TestSupport.policy(["/bin/sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"]) { policy in
            policy.limits.pids = 8
            policy.limits.wallTimeS = 3
        }
        let report = await forked.run(JailRequest(policy: bomb))
        #expect(server.joinedCgroups == joined + (TestHost.cgroupVersion == .v1 ? 1 : 0))
        #expect(report.pidsLimitHits > 0 && (report.pidsPeak ?? 99) <= 8, "\(report.outcome) \(String(describing: report.pidsPeak))")
        #expect(smallFile("/proc/\(server.pid)/cgroup") == home)
    }

    @Test func aSetupFailureReadsTheSameFromBothAndLeavesNoChild() async throws {
        // An empty id range: the uid_map write fails in the parent after the clone.
        let inProcess = try Self.supervisor(forkServer: false, idCount: 0)
        let forked = try Self.supervisor(forkServer: true, idCount: 0)
        defer {
            inProcess.shutdown()
            forked.shutdown()
        }
        let policy = TestSupport.policy(["/bin/true"])
        let a = await inProcess.run(JailRequest(policy: policy))
        let b = await forked.run(JailRequest(policy: policy))
        #expect(a.outcome == .setupError && b.outcome == .setupError)
        #expect(a.setup?.stage == b.setup?.stage, "\(String(describing: a.setup)) vs \(String(describing: b.setup))")
        #expect(b.setup?.stage == "user namespace map", "\(String(describing: b.setup))")
        // The killed child was ours to reap (CLONE_PARENT): no child cloned by the server (its
        // name is still the server's) is left, zombie or not.
        #expect(Self.childrenNamedForkServer().isEmpty, "\(Self.childrenNamedForkServer())")
    }

    /// This process's children, from /proc: each one's pid, its whole `stat` line, and the fields
    /// after its name (state, ppid, …; the line's field n is `fields[n - 3]`).
    static func children() -> [(pid: Int32, stat: String, fields: [Substring])] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var found: [(pid: Int32, stat: String, fields: [Substring])] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), let stat = smallFile("/proc/\(pid)/stat"),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == getpid() else { continue }
            found.append((pid, stat, fields))
        }
        return found
    }

    /// This process's children whose name is `edgy-forkserver`: the servers (children of the
    /// keeper thread) and jails the server cloned that have not exec'd.
    static func childrenNamedForkServer() -> [String] {
        let server = ForkServer.existing(executable: executable)?.pid
        return children().filter { $0.stat.contains("(edgy-forkserver)") && $0.pid != server }.map(\.stat)
    }

    @Test func aKilledServerIsReplacedAndNoAttemptIsLost() async throws {
        let forked = try Self.supervisor(forkServer: true)
        defer { forked.shutdown() }
        let server = try #require(forked.forkServer)
        #expect(server.waitUntilRunning())
        let policy = TestSupport.policy(["/bin/sh", "-c", "echo ran"])
        for round in 0..<3 {
            let victim = server.pid
            let restarts = server.restarts
            #expect(kill(victim, SIGKILL) == 0)
            // Right away, before the keeper may have noticed: the spawn meets the dead socket.
            let report = await forked.run(JailRequest(policy: policy))
            #expect(report.outcome == .exited && report.stdoutText == "ran\n", "round \(round): \(report.outcome) \(String(describing: report.setup))")
            #expect(server.waitUntilRunning())
            #expect(server.pid != victim)
            let deadline = monotonicTestNanos() + 3_000_000_000
            while server.restarts == restarts && monotonicTestNanos() < deadline { usleep(1000) }
            #expect(server.restarts > restarts)
        }
    }

    @Test func parkedJailsOutliveTheServerThatClonedThem() async throws {
        let forked = try Self.supervisor(forkServer: true, poolSize: 2)
        defer { forked.shutdown() }
        let server = try #require(forked.forkServer)
        let policy = TestSupport.policy(["/bin/sh", "-c", "echo pooled"])
        _ = await forked.run(JailRequest(policy: policy))
        #expect(await forked.waitUntilPoolSettled(timeoutMs: 5000))
        #expect(forked.parkedJails == 2)
        #expect(kill(server.pid, SIGKILL) == 0)
        for _ in 0..<4 {
            let report = await forked.run(JailRequest(policy: policy))
            #expect(report.outcome == .exited && report.stdoutText == "pooled\n", "\(report.outcome) \(String(describing: report.setup))")
        }
    }

    /// Nice value and scheduling policy (fields 19 and 41 of `/proc/PID/stat`) of a process.
    struct Priority: Equatable, CustomStringConvertible {
        var nice: Int, policy: Int
        static let background = Priority(nice: Int(EDGY_BACKGROUND_NICE), policy: Int(SCHED_IDLE_POLICY))
        static let foreground = Priority(nice: 0, policy: 0)
        init(nice: Int, policy: Int) { (self.nice, self.policy) = (nice, policy) }
        init?(fields: [Substring]) {
            guard fields.count > 38, let nice = Int(fields[16]), let policy = Int(fields[38]) else { return nil }
            (self.nice, self.policy) = (nice, policy)
        }
        var description: String { "nice \(nice) policy \(policy)" }
    }

    /// `SCHED_IDLE`, which Glibc's module does not export.
    static let SCHED_IDLE_POLICY: Int32 = 5

    /// Priorities of this process's children that wait at a gate (parked jails).
    static func parkedChildrenPriorities() -> [Priority] {
        children().filter { $0.fields[0] == "S" }.compactMap { Priority(fields: $0.fields) }
    }

    /// The pool fills itself in the background (its thread, its clones, and the children's setup
    /// until they park, at `SCHED_IDLE` and `EDGY_BACKGROUND_NICE`), so that it takes no core from a
    /// request; the workload of a pooled jail runs at the releasing thread's priority, cloned in
    /// process or by the server, and the server goes back to the foreground after each clone.
    @Test(arguments: [false, true])
    func poolSpawnsRunInTheBackgroundAndWorkloadsDoNot(forkServer: Bool) async throws {
        let supervisor = try Self.supervisor(forkServer: forkServer, poolSize: 1)
        defer { supervisor.shutdown() }
        let policy = TestSupport.policy(["/bin/sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"])
        let first = await supervisor.run(JailRequest(policy: policy))
        #expect(first.outcome == .exited && first.stdoutText == "0 0\n", "on demand: \(first.stdoutText) \(first.stderrText)")
        #expect(await supervisor.waitUntilPoolSettled(timeoutMs: 5000))
        #expect(supervisor.parkedJails == 1)
        #expect(Self.parkedChildrenPriorities().contains(.background), "\(Self.parkedChildrenPriorities())")
        if let server = supervisor.forkServer {
            let stat = smallFile("/proc/\(server.pid)/stat") ?? ""
            let fields = stat.lastIndex(of: ")").map { stat[stat.index(after: $0)...].split(separator: " ") } ?? []
            #expect(Priority(fields: fields) == .foreground, "the server: \(stat)")
        }
        let pooled = await supervisor.run(JailRequest(policy: policy))
        #expect(pooled.outcome == .exited && pooled.stdoutText == "0 0\n", "pooled: \(pooled.stdoutText) \(pooled.stderrText)")
    }

    @Test func aHungServerIsKilledAndReplaced() async throws {
        let forked = try Self.supervisor(forkServer: true)
        defer { forked.shutdown() }
        let server = try #require(forked.forkServer)
        #expect(server.waitUntilRunning())
        let victim = server.pid
        #expect(kill(victim, SIGSTOP) == 0)
        let report = await forked.run(JailRequest(policy: TestSupport.policy(["/bin/true"])))
        #expect(report.outcome == .exited && report.exitCode == 0, "\(report.outcome) \(String(describing: report.setup))")
        #expect(server.waitUntilRunning())
        #expect(server.pid != victim)
    }

    /// A server from another build (here a stand-in that answers the handshake with version 1) is
    /// never used nor restarted in a loop: jails are cloned in process at once.
    @Test func aServerOfAnotherProtocolVersionIsNotUsed() async throws {
        let directory = "/tmp/edgy-forkserver-test-\(getpid())"
        mkdir(directory, 0o755)
        let path = directory + "/old-forkserver"
        defer {
            unlink(path)
            rmdir(directory)
        }
        let script = """
            #!/usr/bin/python3
            import socket, struct
            s = socket.socket(fileno=3)
            while True:
                data = s.recv(65536)
                if not data:
                    break
                magic, version, op, size, sequence = struct.unpack_from("<IIIIQ", data)
                s.send(struct.pack("<IIQii4iii", magic, 1, sequence, 0, -1, 0, 0, -1, -1, 0, 0))

            """
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o755)
        _ = script.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        var host = JailHostConfiguration(poolSize: 0)
        host.forkServer = path
        let supervisor = try JailSupervisor(host: host, cgroups: TestSupport.sharedCgroups())
        defer { supervisor.shutdown() }
        let server = try #require(supervisor.forkServer)
        #expect(!server.waitUntilRunning(timeoutMs: 5000))
        #expect(server.isIncompatible)
        #expect(server.lastError?.contains("protocol 1") == true, "\(server.lastError ?? "")")
        let started = ContinuousClock.now
        let report = await supervisor.run(JailRequest(policy: TestSupport.policy(["/bin/sh", "-c", "echo fallback"])))
        #expect(report.outcome == .exited && report.stdoutText == "fallback\n")
        #expect(ContinuousClock.now - started < .seconds(2), "no wait for a server that will not come")
        #expect(server.restarts == 0)
    }

    /// The server's own decoder: a request it cannot use gets an EPROTO answer, and it goes on.
    @Test func malformedRequestsAreAnsweredAndTheServerGoesOn() throws {
        var socket: Int32 = -1
        var pidfd: Int32 = -1
        var pid: pid_t = 0
        #expect(edgy_forkserver_launch(Self.executable, &socket, &pidfd, &pid) == 0)
        defer { close(pidfd) }
        func exchange(_ bytes: [UInt8]) -> edgy_forkserver_reply? {
            guard send(socket, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
            var reply = edgy_forkserver_reply()
            let n = recv(socket, &reply, MemoryLayout<edgy_forkserver_reply>.size, 0)
            return n == MemoryLayout<edgy_forkserver_reply>.size ? reply : nil
        }
        var request = edgy_forkserver_request()
        request.magic = EDGY_FORKSERVER_MAGIC
        request.version = EDGY_FORKSERVER_VERSION
        request.op = EDGY_FORKSERVER_SPAWN
        request.shape_size = UInt32(MemoryLayout<edgy_shape>.size)
        request.shape.cgroup_fd = -1
        let whole = withUnsafeBytes(of: request) { Array($0) }
        var wrongVersion = request
        wrongVersion.version = 99
        var lyingLength = request
        lyingLength.fs_len = 64
        func withMoves(_ length: UInt32) -> edgy_forkserver_request {
            var moved = request
            moved.moves_len = length
            return moved
        }
        let cases: [[UInt8]] = [
            [1, 2, 3],
            Array(repeating: 0xff, count: 4096),
            Array(whole.prefix(whole.count - 1)),
            withUnsafeBytes(of: wrongVersion) { Array($0) },
            withUnsafeBytes(of: lyingLength) { Array($0) },
            whole,  // well formed, but without the three stdio fds it names
            whole + [1, 0, 0, 0, 0, 0, 0, 0],  // a filesystem plan whose length field disagrees
            withUnsafeBytes(of: withMoves(3)) { Array($0) } + Array("/a\0/b".utf8),  // not NUL-terminated
            withUnsafeBytes(of: withMoves(5)) { Array($0) } + Array("/a\0/b\0/c\0".utf8).prefix(5),  // mismatched length
            withUnsafeBytes(of: withMoves(3)) { Array($0) } + Array("/a\0".utf8) + [0],  // a group without its home
            withUnsafeBytes(of: withMoves(2)) { Array($0) } + [0, 0],  // empty paths
        ]
        for bytes in cases {
            let reply = try #require(exchange(bytes), "no answer to \(bytes.count) bytes")
            #expect(reply.magic == EDGY_FORKSERVER_MAGIC)
            #expect(reply.result == -2 && reply.error.err == EPROTO)
        }
        // The handshake, in any version, is answered with the server's own.
        var ping = request
        ping.version = 99
        ping.op = EDGY_FORKSERVER_PING
        let pingBytes = withUnsafeBytes(of: ping) { Array($0.prefix(MemoryLayout<edgy_forkserver_request>.offset(of: \.fs_len)!)) }
        let pong = try #require(exchange(pingBytes))
        #expect(pong.result == 0 && pong.version == EDGY_FORKSERVER_VERSION)
        var version: UInt32 = 0
        #expect(edgy_forkserver_ping(socket, 7, &version) == 0 && version == EDGY_FORKSERVER_VERSION)
        // EOF: it exits cleanly.
        close(socket)
        var code: Int32 = 0
        var status: Int32 = -1
        #expect(edgy_waitid_pidfd(pidfd, &code, &status, nil, 0) == 0)
        #expect(code == CLD_EXITED && status == 0)
    }
}

private func monotonicTestNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

private func smallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = read(fd, &buffer, buffer.count)
    return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
}
