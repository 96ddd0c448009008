import EdgyCgroup

extension TestSupport {
    /// The cgroup manager shared by the tests of one process (creating the parent group is
    /// idempotent, but there is no need to do it per test).
    public static func sharedCgroups() throws -> CgroupManager {
        try CgroupManager(host: try CgroupHost.detect(), parentName: "edgy-test")
    }
}

extension TestSupport {
    /// The directories the tests' jail groups are created in: `edgy-test` in each v1 controller
    /// hierarchy, or the one v2 `edgy-test` group.
    public static func jailCgroupParents() -> [String] {
        (try? sharedCgroups().parentDirectories) ?? []
    }
}
