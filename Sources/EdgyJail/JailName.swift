import Glibc
import Synchronization

/// Names of jail cgroups: unique in the host's cgroup tree, since a process may hold several
/// supervisors (the tests do), each counting its attempts from 1.
enum JailName {
    private static let counter = Atomic<UInt64>(0)

    /// "jail-PID-N" or "pool-PID-N", N counted across the whole process.
    static func next(_ prefix: String) -> String {
        "\(prefix)-\(getpid())-\(counter.add(1, ordering: .relaxed).newValue)"
    }
}
