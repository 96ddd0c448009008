import EdgyTestSupport
import Glibc
import SystemPackage
import Testing
@testable import EdgyCgroup

/// Host tests on this machine's cgroup v1 hierarchies. They need root, which both this machine
/// and CI have; a normal user's `swift test` skips them, and `.ci/run` fails on any skip.
@Suite(.tags(.root, .cgroupV1), .requiresCgroupV1, .timeLimit(.minutes(1)))
struct V1Tests {
    let host: CgroupHost

    init() throws {
        host = try CgroupHost.detect()
    }

    @Test func detectsV1() throws {
        #expect(host.version == .v1)
        for c in v1Controllers { #expect(host.v1Mounts[c] == "\(v1Root)/\(c)") }
        try host.check(requiring: CgroupLimits(memoryBytes: 64 << 20, pidsMax: 16, cpuMaxCores: 1))
    }

    /// A child forked while the calling thread is inside starts in the group in every hierarchy;
    /// the thread (and every other thread of this process) is back home afterwards.
    @Test func aChildClonedWithTheThreadInsideStartsInTheGroup() throws {
        let parent = uniqueParent("inside")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "j", limits: CgroupLimits(memoryBytes: 64 << 20, pidsMax: 8))
        let before = CgroupFS.read("/proc/thread-self/cgroup")
        let child: pid_t? = g.withCallingThreadInside {
            #expect(CgroupFS.read("/proc/thread-self/cgroup")?.contains("/\(parent)/j") == true)
            let pid = fork()
            if pid == 0 {
                pause()
                _exit(0)
            }
            return pid
        }
        let pid = try #require(child)
        defer {
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            try? g.remove()
        }
        #expect(CgroupFS.read("/proc/thread-self/cgroup") == before)
        #expect(g.processes() == [pid], "only the child, never this process: \(g.processes())")
        let childGroups = CgroupFS.read("/proc/\(pid)/cgroup") ?? ""
        for c in v1Controllers {
            #expect(childGroups.split(separator: "\n").contains { $0.contains(c) && $0.hasSuffix("/\(parent)/j") }, "\(c): \(childGroups)")
        }
    }

    @Test func createSetsLimitFilesAndRemoveDeletesThem() throws {
        let parent = uniqueParent("limits")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "a/b", limits: CgroupLimits(memoryBytes: 64 << 20, pidsMax: 8, cpuMaxCores: 0.5))
        #expect(g.name == "a_b")
        #expect(g.cloneIntoFD == nil)
        func read(_ c: String, _ f: String) -> String? {
            CgroupFS.read("\(v1Root)/\(c)/\(parent)/a_b/\(f)")?.split(separator: "\n").first.map(String.init)
        }
        #expect(read("memory", "memory.limit_in_bytes") == "67108864")
        #expect(read("memory", "memory.memsw.limit_in_bytes") == "67108864")
        #expect(read("pids", "pids.max") == "8")
        #expect(read("cpu", "cpu.cfs_period_us") == "100000")
        #expect(read("cpu", "cpu.cfs_quota_us") == "50000")
        for c in v1Controllers { #expect(dirExists("\(v1Root)/\(c)/\(parent)/a_b")) }
        // A second group with the same name is refused, and leaves the first intact.
        #expect(throws: CgroupError.self) { try m.create(name: "a_b", limits: CgroupLimits()) }
        #expect(dirExists("\(v1Root)/memory/\(parent)/a_b"))
        try g.remove()
        for c in v1Controllers { #expect(!dirExists("\(v1Root)/\(c)/\(parent)/a_b")) }
        try g.remove()  // idempotent
    }

    @Test func removeTakesSubgroupsFirst() throws {
        let parent = uniqueParent("sub")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "outer", limits: CgroupLimits())
        // As a workload with a delegated subtree would: groups inside the jail's own, two deep.
        let nested = "\(v1Root)/memory/\(parent)/outer/inner/deeper"
        #expect(mkdir("\(v1Root)/memory/\(parent)/outer/inner", 0o755) == 0)
        #expect(mkdir(nested, 0o755) == 0)
        #expect(mkdir("\(v1Root)/pids/\(parent)/outer/inner", 0o755) == 0)
        try g.remove()
        for c in v1Controllers { #expect(!dirExists("\(v1Root)/\(c)/\(parent)/outer")) }
    }

    @Test func attachedProcessIsListedAndKilled() throws {
        let parent = uniqueParent("kill")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "one", limits: CgroupLimits(memoryBytes: 64 << 20))
        let child = spawn(["/bin/sleep", "100"])
        #expect(g.isEmpty())
        try g.attach(pid: child.pid)
        #expect(g.processes() == [child.pid])
        #expect(!g.isEmpty())
        for c in v1Controllers {
            #expect(CgroupFS.pids(in: CgroupFS.read("\(v1Root)/\(c)/\(parent)/one/cgroup.procs") ?? "") == [child.pid])
        }
        g.kill()
        #expect(termSignal(child.wait()) == SIGKILL)
        #expect(g.processes().isEmpty)
        #expect(g.isEmpty())
        #expect(CgroupFS.read("\(v1Root)/freezer/\(parent)/one/freezer.state")?.hasPrefix("THAWED") == true)
        _ = g.stats()
        try g.remove()
    }

    @Test func killsDoubleForkedAndStoppedProcesses() throws {
        let parent = uniqueParent("tree")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "tree", limits: CgroupLimits(pidsMax: 32))
        // Attached before it forks: the backgrounded sleeps are born in the group.
        let sh = spawn(["/bin/sh", "-c", "read x; sleep 100 & sleep 100 & wait"], stdinPipe: true)
        try g.attach(pid: sh.pid)
        sh.go()
        let stopped = spawn(["/bin/sleep", "100"])
        try g.attach(pid: stopped.pid)
        Glibc.kill(stopped.pid, SIGSTOP)
        #expect(eventually { g.processes().count == 4 })
        #expect(eventually { procState(stopped.pid) == "T" })
        let all = g.processes()
        g.kill()
        #expect(termSignal(sh.wait()) == SIGKILL)
        #expect(termSignal(stopped.wait()) == SIGKILL)
        #expect(g.processes().isEmpty)
        // The grandchildren were reparented; they must be dead (or zombies awaiting their reaper).
        for p in all { #expect(eventually { isDeadOrZombie(p) }, "pid \(p) survived") }
        try g.remove()
        for c in v1Controllers { #expect(!dirExists("\(v1Root)/\(c)/\(parent)/tree")) }
    }

    @Test func memoryHogIsOOMKilled() throws {
        let parent = uniqueParent("oom")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let limit: UInt64 = 64 << 20
        let g = try m.create(name: "hog", limits: CgroupLimits(memoryBytes: limit))
        let hog = spawn(
            ["/usr/bin/python3", "-c", "import sys; sys.stdin.readline(); b = bytearray(512*1024*1024); print(len(b))"],
            stdinPipe: true)
        try g.attach(pid: hog.pid)
        // Read before the hog runs, then after, through the files the group holds open: the
        // second read must see what changed in between.
        let before = g.stats()
        #expect(before.oomKills == 0)
        hog.go()
        #expect(termSignal(hog.wait()) == SIGKILL)
        let s = g.stats()
        #expect(s.oomKills >= 1)
        #expect((s.memoryPeakBytes ?? 0) > (before.memoryPeakBytes ?? 0))
        // Not asserted: Linux 6.13+ tracks failcnt on the v1 memory counter only, and with
        // memsw equal to the limit the memsw counter is the one that fails, so
        // memoryLimitHits reads 0 here (verified by hand: memory.failcnt counts when memsw is unset).
        // The supervisor classifies memory_limit from oomKills.
        let peak = try #require(s.memoryPeakBytes)
        #expect(peak >= limit * 9 / 10 && peak <= limit + (1 << 20), "peak \(peak)")
        #expect((s.cpuUsageNanos ?? 0) > 0)
        try g.remove()
    }

    @Test func pidsLimitStopsForkLoop() throws {
        let parent = uniqueParent("pids")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "forks", limits: CgroupLimits(pidsMax: 8))
        let sh = spawn(
            ["/bin/sh", "-c", "read x; for i in $(seq 50); do sleep 5 & done; wait"],
            stdinPipe: true, stderrPipe: true)
        try g.attach(pid: sh.pid)
        sh.go()
        // dash exits on its first failed fork; the sleeps it did start stay behind in the group.
        _ = sh.wait()
        let s = g.stats()
        g.kill()
        let failures = sh.readStderr().split(separator: "\n").filter { $0.contains("fork") }.count
        #expect(failures >= 1)
        #expect(s.pidsLimitHits >= 1)
        #expect(s.pidsPeak == 8)
        try g.remove()
    }

    @Test func reapLeftoversKillsAndRemovesGroups() throws {
        let parent = uniqueParent("reap")
        defer { removeV1Parent(parent) }
        let dead = try CgroupManager(host: host, parentName: parent)
        let a = try dead.create(name: "left-a", limits: CgroupLimits(memoryBytes: 32 << 20))
        _ = try dead.create(name: "left-b", limits: CgroupLimits())
        let child = spawn(["/bin/sleep", "100"])
        try a.attach(pid: child.pid)
        let restarted = try CgroupManager(host: host, parentName: parent)
        #expect(restarted.reapLeftovers() == 2)
        #expect(termSignal(child.wait()) == SIGKILL)
        for c in v1Controllers {
            #expect(CgroupFS.subdirectories("\(v1Root)/\(c)/\(parent)").isEmpty)
        }
        #expect(restarted.reapLeftovers() == 0)
    }

    /// Measures `create` and `attach` (v1 moves a task through five hierarchies), back to back and
    /// with 50 ms pauses, and prints the numbers. Not an assertion on speed: the host varies.
    @Test(.timeLimit(.minutes(1))) func attachLatency() throws {
        let parent = uniqueParent("latency")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let limits = CgroupLimits(memoryBytes: 64 << 20, pidsMax: 16, cpuMaxCores: 1)
        func summary(_ xs: [UInt64]) -> String {
            let s = xs.sorted()
            return "median \(s[s.count / 2] / 1000) µs, p90 \(s[s.count * 9 / 10] / 1000) µs, max \(s.last! / 1000) µs"
        }
        func run(_ label: String, pauseMs: Int) throws {
            let n = 20
            var creates: [UInt64] = []
            var attaches: [UInt64] = []
            var groups: [JailCgroup] = []
            let children = (0..<n).map { _ in spawn(["/bin/sleep", "100"]) }
            for i in 0..<n {
                let t0 = CgroupFS.nowNanos()
                groups.append(try m.create(name: "\(label)-\(i)", limits: limits))
                creates.append(CgroupFS.nowNanos() - t0)
            }
            // Where the time goes: one spaced move per hierarchy, timed write by write.
            if pauseMs > 0 {
                let probe = spawn(["/bin/sleep", "100"])
                let g = try m.create(name: "\(label)-probe", limits: limits)
                var parts: [String] = []
                for d in g.dirs {
                    CgroupFS.sleep(milliseconds: pauseMs)
                    let t0 = CgroupFS.nowNanos()
                    try CgroupFS.write(d + "/cgroup.procs", String(probe.pid), what: "attach")
                    parts.append("\(d.split(separator: "/")[3]) \((CgroupFS.nowNanos() - t0) / 1000) µs")
                }
                print("[cgroup v1 latency] \(label): per-hierarchy move: \(parts.joined(separator: ", "))")
                g.kill()
                _ = probe.wait()
                try g.remove()
            }
            for i in 0..<n {
                if pauseMs > 0 { CgroupFS.sleep(milliseconds: pauseMs) }
                let t0 = CgroupFS.nowNanos()
                try groups[i].attach(pid: children[i].pid)
                attaches.append(CgroupFS.nowNanos() - t0)
            }
            for i in 0..<n {
                groups[i].kill()
                _ = children[i].wait()
                try groups[i].remove()
            }
            print("[cgroup v1 latency] \(label): create \(summary(creates)); attach \(summary(attaches))")
        }
        try run("back-to-back", pauseMs: 0)
        try run("spaced-50ms", pauseMs: 50)
    }
}

@Suite(.tags(.root, .cgroupV1), .requiresCgroupV1, .timeLimit(.minutes(1)))
struct V1ConcurrencyTests {
    /// Eight jails at once from concurrent tasks: the types are shared across threads by the supervisor.
    @Test func concurrentJailLifecycles() async throws {
        let host = try CgroupHost.detect()
        let parent = uniqueParent("concurrent")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<8 {
                group.addTask {
                    do {
                        let g = try m.create(name: "j\(i)", limits: CgroupLimits(memoryBytes: 32 << 20, pidsMax: 8, cpuMaxCores: 0.5))
                        let child = spawn(["/bin/sleep", "100"])
                        try g.attach(pid: child.pid)
                        let listed = g.processes() == [child.pid]
                        g.kill()
                        let killed = termSignal(child.wait()) == SIGKILL
                        try g.remove()
                        return listed && killed
                    } catch {
                        return false
                    }
                }
            }
            var all: [Bool] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results == Array(repeating: true, count: 8))
        for c in v1Controllers { #expect(CgroupFS.subdirectories("\(v1Root)/\(c)/\(parent)").isEmpty) }
    }

    @Test func attachToVanishedProcessOrGroupFailsClearly() throws {
        let host = try CgroupHost.detect()
        let parent = uniqueParent("errors")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "e", limits: CgroupLimits())
        let child = spawn(["/bin/true"])
        _ = child.wait()
        do {
            try g.attach(pid: child.pid)
            Issue.record("attach of a reaped pid succeeded")
        } catch {
            #expect(error.code == .io)
            #expect(error.errno == .noSuchProcess)
            #expect(error.path?.hasSuffix("/cgroup.procs") == true)
        }
        try g.remove()
        do {
            try g.attach(pid: getpid())
            Issue.record("attach to a removed group succeeded")
        } catch {
            #expect(error.code == .io)
        }
    }
}
