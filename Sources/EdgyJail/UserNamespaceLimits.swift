import CEdgyJail
import EdgyPolicy

/// The `/proc/sys/user` limits a jail's own user namespace gets, written by the child as root of
/// that namespace before the filesystem is built.
///
/// The kernel charges these counts to the caller's user namespace and then, level by level, to the
/// owner of each namespace in its parent, checking every level's limit. The daemon creates every
/// jail's namespace, so a jail's inotify instances also count against host root's allowance
/// (`fs.inotify.max_user_instances`, 128 by default): without a limit at the jail's own level, one
/// jail could take it all. With these, a jail holds at most its own share; host root keeps the rest
/// as long as the jails running at once times the share stays below root's limit.
enum UserNamespaceLimits {
    /// Name under /proc/sys/user → value. No namespace may be created inside a jail, whatever the
    /// seccomp filter allows: a nested user namespace would hand the workload capabilities over
    /// new namespaces (and the kernel surface behind them), and without one it lacks the
    /// CAP_SYS_ADMIN any other namespace needs anyway.
    static func values(for policy: Policy) -> [(String, UInt64)] {
        let namespaces: UInt64 = 0
        return [
            ("max_inotify_instances", 16),
            ("max_inotify_watches", 8192),
            ("max_fanotify_groups", 8),
            ("max_fanotify_marks", 8192),
            ("max_user_namespaces", namespaces),
            ("max_ipc_namespaces", namespaces),
            ("max_mnt_namespaces", namespaces),
            ("max_net_namespaces", namespaces),
            ("max_pid_namespaces", namespaces),
            ("max_uts_namespaces", namespaces),
            ("max_cgroup_namespaces", namespaces),
            ("max_time_namespaces", namespaces),
        ]
    }

    /// Appends the (name, value) offset pairs to the filesystem plan and points its header at them.
    static func add(_ limits: [(String, UInt64)], to plan: inout FilesystemPlan, header: inout edgy_fs_plan) {
        var offsets: [UInt64] = []
        for (name, value) in limits {
            offsets.append(plan.string(name))
            offsets.append(plan.string(String(value)))
        }
        header.userns_limits = plan.offsetTable(offsets)
        header.n_userns_limits = UInt32(limits.count)
    }
}
