import EdgyTestSupport
import Glibc
import Testing
@testable import EdgyCgroup

/// The v2 code paths on this machine's controller-less cgroup2 mount: core files only
/// (`cgroup.procs`, `cgroup.kill`, `cgroup.events`), so no limits.
@Suite(.tags(.root, .cgroupV2), .requiresCgroup2Unified, .timeLimit(.minutes(1)))
struct V2CoreTests {
    static let mount = "/sys/fs/cgroup/unified"

    @Test func createAttachKillRemove() throws {
        let host = try CgroupHost.unified(mountPoint: Self.mount)
        #expect(host.version == .v2)
        // No controllers here: a limit must be refused, never dropped.
        #expect(throws: CgroupError.self) { try host.check(requiring: CgroupLimits(memoryBytes: 64 << 20)) }
        do {
            try host.check(requiring: CgroupLimits(pidsMax: 8))
            Issue.record("pids limit accepted on a controller-less cgroup2")
        } catch {
            #expect(error.code == .missingController)
            #expect(error.description.contains("pids"))
            #expect(error.path == "\(Self.mount)/cgroup.controllers")
        }
        let parent = uniqueParent("v2")
        defer { rmdir("\(Self.mount)/\(parent)") }
        let m = try CgroupManager(host: host, parentName: parent)
        #expect(throws: CgroupError.self) { try m.create(name: "limited", limits: CgroupLimits(cpuMaxCores: 1)) }
        #expect(!dirExists("\(Self.mount)/\(parent)/limited"))

        let g = try m.create(name: "core", limits: CgroupLimits())
        let fd = try #require(g.cloneIntoFD)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)

        let sh = spawn(["/bin/sh", "-c", "read x; sleep 100 & sleep 100 & wait"], stdinPipe: true)
        try g.attach(pid: sh.pid)
        sh.go()
        let stopped = spawn(["/bin/sleep", "100"])
        try g.attach(pid: stopped.pid)
        Glibc.kill(stopped.pid, SIGSTOP)
        #expect(eventually { g.processes().count == 4 })
        #expect(CgroupFS.keyed("populated", in: CgroupFS.read("\(Self.mount)/\(parent)/core/cgroup.events") ?? "") == 1)
        #expect(!g.isEmpty())
        let all = g.processes()
        g.kill()
        #expect(termSignal(sh.wait()) == SIGKILL)
        #expect(termSignal(stopped.wait()) == SIGKILL)
        for p in all { #expect(eventually { isDeadOrZombie(p) }, "pid \(p) survived") }
        #expect(eventually { g.isEmpty() })
        _ = g.stats()
        try g.remove()
        #expect(g.cloneIntoFD == nil)
        #expect(fcntl(fd, F_GETFD) == -1)  // closed by remove()
        #expect(!dirExists("\(Self.mount)/\(parent)/core"))
    }

    /// No fd of ours may point into a jail group once it is removed (the CLONE_INTO_CGROUP fd).
    @Test func noFdLeftPointingIntoGroups() throws {
        let host = try CgroupHost.unified(mountPoint: Self.mount)
        let parent = uniqueParent("v2fds")
        defer { rmdir("\(Self.mount)/\(parent)") }
        let m = try CgroupManager(host: host, parentName: parent)
        for i in 0..<10 {
            let g = try m.create(name: "g\(i)", limits: CgroupLimits())
            #expect(g.cloneIntoFD != nil)
            try g.remove()
        }
        _ = try m.create(name: "dropped", limits: CgroupLimits())  // dropped without remove(): deinit closes
        rmdir("\(Self.mount)/\(parent)/dropped")
        // Inside the parent (which the manager holds open while it lives).
        let prefix = "\(Self.mount)/\(parent)/"
        var leaked: [String] = []
        for fd in 0..<Int32(4096) {
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
            guard n > 0 else { continue }
            let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix(prefix) { leaked.append("\(fd) -> \(target)") }
        }
        #expect(leaked.isEmpty)
    }

    @Test func reapLeftovers() throws {
        let host = try CgroupHost.unified(mountPoint: Self.mount)
        let parent = uniqueParent("v2reap")
        defer { rmdir("\(Self.mount)/\(parent)") }
        let m = try CgroupManager(host: host, parentName: parent)
        let g = try m.create(name: "left", limits: CgroupLimits())
        let child = spawn(["/bin/sleep", "100"])
        try g.attach(pid: child.pid)
        #expect(try CgroupManager(host: host, parentName: parent).reapLeftovers() == 1)
        #expect(termSignal(child.wait()) == SIGKILL)
        #expect(!dirExists("\(Self.mount)/\(parent)/left"))
    }

    @Test func rejectsNonCgroup2MountPoint() {
        #expect(throws: CgroupError.self) { try CgroupHost.unified(mountPoint: "/sys/fs/cgroup/memory") }
    }
}
