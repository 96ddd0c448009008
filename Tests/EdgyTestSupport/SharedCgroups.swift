import EdgyCgroup

extension TestSupport {
    /// The cgroup manager shared by the tests of one process (creating the parent group is
    /// idempotent, but there is no need to do it per test).
    public static func sharedCgroups() throws -> CgroupManager {
        try CgroupManager(host: try CgroupHost.detect(), parentName: "edgy-test")
    }
}
