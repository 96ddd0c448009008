import EdgyTestSupport
import Glibc
import Testing
@testable import EdgyCgroup

/// Groups kept between jails on v1 (`CgroupManager`'s `spareGroups`, as edgyd runs): the next
/// jail finds them as a new group would be, and only groups of jails that ended by themselves
/// are kept.
@Suite(.tags(.root, .cgroupV1), .requiresCgroupV1, .timeLimit(.minutes(1)))
struct SpareGroupTests {
    let host: CgroupHost

    init() throws {
        host = try CgroupHost.detect()
    }

    /// Busy-loops in a child attached to `group`, for about `milliseconds` of CPU, and waits for it.
    func burn(in group: JailCgroup, milliseconds: Int) throws {
        let script = "import sys, time\nsys.stdin.readline()\nwhile time.process_time() < \(Double(milliseconds) / 1000): pass"
        let child = spawn(["/usr/bin/python3", "-c", script], stdinPipe: true)
        try group.attach(pid: child.pid)
        child.go()
        #expect(child.wait() == 0)
    }

    /// The spare groups' names under `parent` in `controller`'s hierarchy.
    func spares(_ controller: String, _ parent: String) -> Set<String> {
        Set(CgroupFS.subdirectories("\(v1Root)/\(controller)/\(parent)").filter { $0.hasPrefix("spare-") })
    }

    @Test func aKeptGroupIsResetForTheNextJail() throws {
        let parent = uniqueParent("spares")
        defer { removeV1Parent(parent) }
        do {
            let m = try CgroupManager(host: host, parentName: parent, spareGroups: 4)
            let first = try m.create(name: "first", limits: CgroupLimits(memoryBytes: 64 << 20, pidsMax: 16, cpuMaxCores: 0.5))
            // Kept hierarchies use the spare's directory; memory and pids the jail's own.
            for c in ["freezer", "cpu", "cpuacct"] { #expect(first.dirFor[c]?.contains("/\(parent)/spare-") == true, "\(c)") }
            for c in ["memory", "pids"] { #expect(first.dirFor[c] == "\(v1Root)/\(c)/\(parent)/first") }
            let spareName = try #require(spares("cpu", parent).first)
            #expect(CgroupFS.read("\(v1Root)/cpu/\(parent)/\(spareName)/cpu.cfs_quota_us")?.hasPrefix("50000") == true)
            try burn(in: first, milliseconds: 250)
            let firstCPU = try #require(first.stats().cpuUsageNanos)
            #expect(firstCPU >= 150_000_000, "\(firstCPU) ns")
            try first.remove()
            #expect(m.spareCount == 1)
            for c in ["memory", "pids"] { #expect(!dirExists("\(v1Root)/\(c)/\(parent)/first")) }

            // The next jail takes the same directories, zeroed and without the quota it does not set.
            let second = try m.create(name: "second", limits: CgroupLimits(memoryBytes: 64 << 20, pidsMax: 16))
            #expect(m.spareCount == 0)
            for c in ["freezer", "cpu", "cpuacct"] { #expect(spares(c, parent) == [spareName], "\(c)") }
            #expect(second.dirFor["cpuacct"] == first.dirFor["cpuacct"])
            #expect(CgroupFS.read("\(v1Root)/cpu/\(parent)/\(spareName)/cpu.cfs_quota_us")?.hasPrefix("-1") == true)
            let fresh = second.stats()
            #expect(fresh.cpuUsageNanos == 0 && fresh.cpuUserNanos == 0 && fresh.cpuSystemNanos == 0, "\(fresh)")
            try burn(in: second, milliseconds: 60)
            let secondCPU = try #require(second.stats().cpuUsageNanos)
            #expect(secondCPU > 0 && secondCPU < firstCPU / 2, "\(secondCPU) ns after \(firstCPU) ns")
            try second.remove()
            #expect(m.spareCount == 1)

            // A group that had to be killed is removed whole.
            let killed = try m.create(name: "killed", limits: CgroupLimits())
            let sleeper = spawn(["/bin/sleep", "100"])
            try killed.attach(pid: sleeper.pid)
            killed.kill()
            _ = sleeper.wait()
            try killed.remove()
            #expect(m.spareCount == 0)
            for c in v1Controllers { #expect(CgroupFS.subdirectories("\(v1Root)/\(c)/\(parent)").isEmpty, "\(c)") }

            // A spare whose directories vanished is replaced by a new one.
            let third = try m.create(name: "third", limits: CgroupLimits())
            try third.remove()
            let kept = spares("freezer", parent)
            for c in ["freezer", "cpu", "cpuacct"] { for name in kept { _ = CgroupFS.rmdir("\(v1Root)/\(c)/\(parent)/\(name)") } }
            let fourth = try m.create(name: "fourth", limits: CgroupLimits(cpuMaxCores: 1))
            #expect(spares("cpu", parent).count == 1 && spares("cpu", parent) != kept)
            try fourth.remove()
            #expect(m.spareCount == 1)
        }
        // The manager removes its spares when it goes.
        for c in v1Controllers { #expect(CgroupFS.subdirectories("\(v1Root)/\(c)/\(parent)").isEmpty, "\(c)") }
    }

    @Test func sparesOverCapacityAreRemoved() throws {
        let parent = uniqueParent("capacity")
        defer { removeV1Parent(parent) }
        let m = try CgroupManager(host: host, parentName: parent, spareGroups: 1)
        let groups = try (0..<3).map { try m.create(name: "j\($0)", limits: CgroupLimits()) }
        for g in groups { try g.remove() }
        #expect(m.spareCount == 1)
        #expect(spares("cpuacct", parent).count == 1)
        m.removeSpareGroups()
        #expect(m.spareCount == 0)
        for c in v1Controllers { #expect(CgroupFS.subdirectories("\(v1Root)/\(c)/\(parent)").isEmpty, "\(c)") }
        // After that, groups are removed whole.
        try m.create(name: "late", limits: CgroupLimits()).remove()
        for c in v1Controllers { #expect(CgroupFS.subdirectories("\(v1Root)/\(c)/\(parent)").isEmpty, "\(c)") }
    }
}
