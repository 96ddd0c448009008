import SystemPackage
import Testing
@testable import EdgyCgroup

@Suite struct PureTests {
    @Test func parsesMountinfo() {
        let text = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            42 31 0:39 / /mnt/with\\040space rw - cgroup2 none rw
            garbage line
            """
        let m = CgroupHost.parseMountinfo(text)
        #expect(m == [
            .init(mountPoint: "/sys/fs/cgroup", fstype: "tmpfs", superOptions: "rw,mode=755"),
            .init(mountPoint: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", superOptions: "rw,cpu,cpuacct"),
            .init(mountPoint: "/sys/fs/cgroup/unified", fstype: "cgroup2", superOptions: "rw"),
            .init(mountPoint: "/mnt/with space", fstype: "cgroup2", superOptions: "rw"),
        ])
    }

    @Test(arguments: [
        ("job-42_a.b", "job-42_a.b"),
        ("../etc", "_._etc"),
        (".hidden", "_hidden"),
        ("a/b c", "a_b_c"),
        ("é", "_"),
    ])
    func sanitizesNames(input: String, expected: String) throws {
        #expect(try sanitizeCgroupName(input) == expected)
    }

    @Test func rejectsEmptyName() {
        #expect(throws: CgroupError.self) { try sanitizeCgroupName("") }
    }

    @Test(arguments: [(1.0, 100_000), (0.5, 50_000), (2.25, 225_000), (0.001, 1000)])
    func cfsQuota(cores: Double, quota: Int) {
        #expect(cfsQuotaMicros(cores: cores) == quota)
    }

    @Test(arguments: [
        CgroupLimits(memoryBytes: 0),
        CgroupLimits(pidsMax: 0),
        CgroupLimits(cpuMaxCores: 0),
        CgroupLimits(cpuMaxCores: -1),
        CgroupLimits(cpuMaxCores: .nan),
    ])
    func rejectsInvalidLimits(limits: CgroupLimits) {
        #expect(throws: CgroupError.self) { try limits.validate() }
    }

    @Test func errorDescriptionNamesPathAndErrno() {
        let e = CgroupError(.io, "set memory limit", path: "/x/memory.max", errno: .permissionDenied)
        #expect(e.description.contains("/x/memory.max"))
        #expect(e.description.contains("set memory limit"))
        #expect(e.description.contains("errno 13"))
    }
}
