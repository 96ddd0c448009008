import EdgyCgroup
import Foundation
import Glibc
import Testing

// Test tiers. A test that needs more than a normal user's process carries the tag of what it
// needs and the matching condition, so that `swift test` as a normal user runs the pure tests and
// passes. CI runs as root on a cgroup v1 host with a hybrid cgroup2 mount and PostgreSQL
// installed: every condition holds there, and `.ci/run` fails on any skipped test, so a condition
// that turns off on CI fails the run instead of hiding tests.

extension Tag {
    /// Real jails (namespaces, id maps, mounts, cgroups), edgyd with its jails, or cgroup files.
    @Tag public static var root: Self
    /// The cgroup v1 controller hierarchies under /sys/fs/cgroup.
    @Tag public static var cgroupV1: Self
    /// A cgroup2 file system of its own at /sys/fs/cgroup/unified (a hybrid v1 host's).
    @Tag public static var cgroupV2: Self
    /// A PostgreSQL server: `EDGY_TEST_POSTGRES_URL`, or the binaries to start a throwaway one.
    @Tag public static var postgres: Self
}

/// What this test process may use.
public enum TestHost {
    public static let isRoot = geteuid() == 0

    /// The hierarchy jails would use, when cgroups are mounted at all.
    public static let cgroupVersion: CgroupVersion? = try? CgroupHost.detect().version

    /// Whether a cgroup2 file system is mounted at `path` (from /proc/self/mountinfo: field 5 is
    /// the mount point, the first field after " - " the file system type).
    public static func isCgroup2Mount(_ path: String) -> Bool {
        guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        return table.split(separator: "\n").contains { line in
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { return false }
            let fields = halves[0].split(separator: " ")
            return fields.count > 4 && fields[4] == path && halves[1].split(separator: " ").first == "cgroup2"
        }
    }

    /// A server to use, or `initdb` to start one (what `scripts/postgres-test-server` needs).
    public static let hasPostgres: Bool = {
        if let url = ProcessInfo.processInfo.environment["EDGY_TEST_POSTGRES_URL"], !url.isEmpty { return true }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.contains { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }
    }()
}

extension Trait where Self == ConditionTrait {
    /// Runs as root (real jails, cgroups, edgyd).
    public static var requiresRoot: Self {
        .enabled(if: TestHost.isRoot, "needs root: real jails, cgroups or edgyd (run `scripts/test`)")
    }

    /// Root on a host whose jails use cgroup v1 (this project's CI machines).
    public static var requiresCgroupV1: Self {
        .enabled(if: TestHost.isRoot && TestHost.cgroupVersion == .v1, "needs root and the cgroup v1 hierarchies")
    }

    /// Root and the separate cgroup2 mount a hybrid host has at /sys/fs/cgroup/unified. (A cgroup v2
    /// only host runs its v2 tests through the jail suites, as `scripts/vm-test` does.)
    public static var requiresCgroup2Unified: Self {
        .enabled(
            if: TestHost.isRoot && TestHost.isCgroup2Mount("/sys/fs/cgroup/unified"),
            "needs root and a cgroup2 file system at /sys/fs/cgroup/unified")
    }

    /// A PostgreSQL server, or the binaries to start one (`scripts/setup` installs them).
    public static var requiresPostgres: Self {
        .enabled(if: TestHost.hasPostgres, "needs PostgreSQL: set EDGY_TEST_POSTGRES_URL or install it (`scripts/setup`)")
    }
}
