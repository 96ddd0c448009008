import EdgyCgroup

extension TestSupport {
    /// One cgroup manager for all the tests of a process. It holds its parent directories open
    /// for its life: a manager per test would close them whenever the last supervisor using it
    /// went away, in the middle of another test that counts its descriptors.
    private static let cgroupManager = Result { () throws(CgroupError) -> CgroupManager in
        try CgroupManager(host: try CgroupHost.detect(), parentName: "edgy-test")
    }

    /// The cgroup manager shared by the tests of one process.
    public static func sharedCgroups() throws -> CgroupManager {
        try cgroupManager.get()
    }
}

extension TestSupport {
    /// The directories the tests' jail groups are created in: `edgy-test` in each v1 controller
    /// hierarchy, or the one v2 `edgy-test` group.
    public static func jailCgroupParents() -> [String] {
        (try? sharedCgroups().parentDirectories) ?? []
    }
}
