/// The syscall vocabulary of policy files: every syscall name a policy may use, and the named
/// groups (`@default`, `@file-system`, …) that `allow` and `deny` lists expand.
///
/// Groups follow the spirit of systemd's syscall sets (`systemd-analyze syscall-filter`), with one
/// hard rule: nothing in ``dangerousNames`` (`@dangerous`) appears in any other group, so no group
/// a policy allows can hand out mount, ptrace, bpf, namespaces, keyrings, module loading, clock
/// setting, io_uring and the like. `@dangerous` exists for deny lists and documentation.
public enum SyscallCatalog {
    /// Every x86_64 syscall name.
    ///
    /// Generated from libseccomp 2.5.4 (`seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, n)`
    /// for n in 0..<600), then the syscalls added by kernels newer than libseccomp knows (after
    /// `futex_requeue`, 456). Those newer names can be denied but not allowed: libseccomp 2.5.4
    /// cannot resolve them, so a filter built with it already refuses them.
    public static let allNames: [String] = [
        "read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "mmap", "mprotect",
        "munmap", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl", "pread64", "pwrite64",
        "readv", "writev", "access", "pipe", "select", "sched_yield", "mremap", "msync", "mincore", "madvise",
        "shmget", "shmat", "shmctl", "dup", "dup2", "pause", "nanosleep", "getitimer", "alarm", "setitimer",
        "getpid", "sendfile", "socket", "connect", "accept", "sendto", "recvfrom", "sendmsg", "recvmsg",
        "shutdown", "bind", "listen", "getsockname", "getpeername", "socketpair", "setsockopt", "getsockopt",
        "clone", "fork", "vfork", "execve", "exit", "wait4", "kill", "uname", "semget", "semop", "semctl",
        "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "fcntl", "flock", "fsync", "fdatasync", "truncate",
        "ftruncate", "getdents", "getcwd", "chdir", "fchdir", "rename", "mkdir", "rmdir", "creat", "link",
        "unlink", "symlink", "readlink", "chmod", "fchmod", "chown", "fchown", "lchown", "umask",
        "gettimeofday", "getrlimit", "getrusage", "sysinfo", "times", "ptrace", "getuid", "syslog", "getgid",
        "setuid", "setgid", "geteuid", "getegid", "setpgid", "getppid", "getpgrp", "setsid", "setreuid",
        "setregid", "getgroups", "setgroups", "setresuid", "getresuid", "setresgid", "getresgid", "getpgid",
        "setfsuid", "setfsgid", "getsid", "capget", "capset", "rt_sigpending", "rt_sigtimedwait",
        "rt_sigqueueinfo", "rt_sigsuspend", "sigaltstack", "utime", "mknod", "uselib", "personality", "ustat",
        "statfs", "fstatfs", "sysfs", "getpriority", "setpriority", "sched_setparam", "sched_getparam",
        "sched_setscheduler", "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min",
        "sched_rr_get_interval", "mlock", "munlock", "mlockall", "munlockall", "vhangup", "modify_ldt",
        "pivot_root", "_sysctl", "prctl", "arch_prctl", "adjtimex", "setrlimit", "chroot", "sync", "acct",
        "settimeofday", "mount", "umount2", "swapon", "swapoff", "reboot", "sethostname", "setdomainname",
        "iopl", "ioperm", "create_module", "init_module", "delete_module", "get_kernel_syms", "query_module",
        "quotactl", "nfsservctl", "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "gettid",
        "readahead", "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
        "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "tkill", "time", "futex",
        "sched_setaffinity", "sched_getaffinity", "set_thread_area", "io_setup", "io_destroy", "io_getevents",
        "io_submit", "io_cancel", "get_thread_area", "lookup_dcookie", "epoll_create", "epoll_ctl_old",
        "epoll_wait_old", "remap_file_pages", "getdents64", "set_tid_address", "restart_syscall",
        "semtimedop", "fadvise64", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun",
        "timer_delete", "clock_settime", "clock_gettime", "clock_getres", "clock_nanosleep", "exit_group",
        "epoll_wait", "epoll_ctl", "tgkill", "utimes", "vserver", "mbind", "set_mempolicy", "get_mempolicy",
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "kexec_load",
        "waitid", "add_key", "request_key", "keyctl", "ioprio_set", "ioprio_get", "inotify_init",
        "inotify_add_watch", "inotify_rm_watch", "migrate_pages", "openat", "mkdirat", "mknodat", "fchownat",
        "futimesat", "newfstatat", "unlinkat", "renameat", "linkat", "symlinkat", "readlinkat", "fchmodat",
        "faccessat", "pselect6", "ppoll", "unshare", "set_robust_list", "get_robust_list", "splice", "tee",
        "sync_file_range", "vmsplice", "move_pages", "utimensat", "epoll_pwait", "signalfd", "timerfd_create",
        "eventfd", "fallocate", "timerfd_settime", "timerfd_gettime", "accept4", "signalfd4", "eventfd2",
        "epoll_create1", "dup3", "pipe2", "inotify_init1", "preadv", "pwritev", "rt_tgsigqueueinfo",
        "perf_event_open", "recvmmsg", "fanotify_init", "fanotify_mark", "prlimit64", "name_to_handle_at",
        "open_by_handle_at", "clock_adjtime", "syncfs", "sendmmsg", "setns", "getcpu", "process_vm_readv",
        "process_vm_writev", "kcmp", "finit_module", "sched_setattr", "sched_getattr", "renameat2", "seccomp",
        "getrandom", "memfd_create", "kexec_file_load", "bpf", "execveat", "userfaultfd", "membarrier",
        "mlock2", "copy_file_range", "preadv2", "pwritev2", "pkey_mprotect", "pkey_alloc", "pkey_free",
        "statx", "io_pgetevents", "rseq", "pidfd_send_signal", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
        "pidfd_open", "clone3", "close_range", "openat2", "pidfd_getfd", "faccessat2", "process_madvise",
        "epoll_pwait2", "mount_setattr", "quotactl_fd", "landlock_create_ruleset", "landlock_add_rule",
        "landlock_restrict_self", "memfd_secret", "process_mrelease", "futex_waitv",
        "set_mempolicy_home_node", "cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait",
        "futex_requeue", "uretprobe", "statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr",
        "lsm_list_modules", "mseal", "setxattrat", "getxattrat", "listxattrat", "removexattrat",
        "open_tree_attr", "file_getattr", "file_setattr",
    ]

    /// The syscalls no group but `@dangerous` may contain: they reach kernel attack surface or
    /// host-wide state that a jailed workload never needs (mounts, namespaces, tracing, BPF,
    /// keyrings, modules, kexec, reboot, swap, clocks, io_uring, raw port I/O, file handles).
    ///
    /// `vm86` and `vm86old` are i386-only: they have no x86_64 number, and the filter kills every
    /// non-native ABI, so they are not listed here.
    public static let dangerousNames: [String] = [
        "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace", "process_vm_readv",
        "process_vm_writev", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon",
        "swapoff", "open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "acct", "iopl",
        "ioperm", "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree", "open_tree_attr",
        "mount_setattr", "quotactl", "quotactl_fd", "lookup_dcookie", "syslog", "vhangup", "pidfd_getfd",
        "kcmp", "personality", "nfsservctl", "uselib", "_sysctl", "create_module", "get_kernel_syms",
        "query_module", "lsm_set_self_attr", "sethostname", "setdomainname", "fanotify_init",
    ]

    /// Group name (with its `@`) → member syscalls. Groups may name other groups.
    public static let groups: [String: [String]] = [
        "@default": [
            "@basic-io", "@file-system", "@process", "@signal", "@memory", "@time", "@network-io",
            "@ipc-lite", "@io-event",
            "ioctl", "uname", "sysinfo", "getrandom", "getcpu", "sched_yield", "sched_getaffinity",
            "sched_getparam", "sched_getscheduler", "sched_getattr", "sched_get_priority_max",
            "sched_get_priority_min", "sched_rr_get_interval", "restart_syscall",
        ],
        // Reading and writing descriptors that are already open.
        "@basic-io": [
            "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
            "pwritev2", "close", "close_range", "dup", "dup2", "dup3", "lseek", "sendfile", "splice", "tee",
            "vmsplice", "copy_file_range",
        ],
        // Paths, metadata, directories, links, xattrs, locks and syncing.
        "@file-system": [
            "open", "openat", "openat2", "creat", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs",
            "fstatfs", "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir",
            "fchdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat",
            "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod",
            "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask", "truncate",
            "ftruncate", "fallocate", "fadvise64", "readahead", "fsync", "fdatasync", "sync", "syncfs",
            "sync_file_range", "flock", "fcntl", "utime", "utimes", "utimensat", "futimesat", "mknod",
            "mknodat", "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
            "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
            "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "cachestat",
        ],
        // Sockets. `socket` itself is narrowed to the policy's address families by the compiler.
        "@network-io": [
            "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "shutdown", "sendto",
            "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "getsockname", "getpeername",
            "setsockopt", "getsockopt",
        ],
        // Creating, running, waiting for and describing processes and threads. Changing ids is
        // harmless here: the jail drops every capability and sets no_new_privs first, and programs
        // that drop privileges must not die. `clone` is narrowed (no namespace flags) by the compiler.
        "@process": [
            "fork", "vfork", "clone", "clone3", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
            "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
            "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
            "setfsgid", "setgroups", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "prctl", "arch_prctl",
            "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "prlimit64", "getrlimit",
            "setrlimit", "getrusage", "times", "capget", "capset", "getpriority", "setpriority",
            "pidfd_open", "pidfd_send_signal", "seccomp",
        ],
        "@signal": [
            "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
            "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "signalfd", "signalfd4",
            "kill", "tkill", "tgkill", "pause",
        ],
        // The process's own address space.
        "@memory": [
            "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore", "mlock", "mlock2",
            "munlock", "mlockall", "munlockall", "memfd_create", "membarrier", "pkey_alloc", "pkey_free",
            "pkey_mprotect", "mbind", "get_mempolicy", "set_mempolicy", "remap_file_pages",
            "map_shadow_stack",
        ],
        // Reading clocks, sleeping and timers; setting clocks is `@dangerous`.
        "@time": [
            "clock_gettime", "clock_getres", "gettimeofday", "time", "clock_nanosleep", "nanosleep",
            "getitimer", "setitimer", "alarm", "timer_create", "timer_settime", "timer_gettime",
            "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        ],
        // What ordinary programs use to talk to themselves and their children.
        "@ipc-lite": [
            "pipe", "pipe2", "eventfd", "eventfd2", "futex", "futex_waitv", "futex_wake", "futex_wait",
            "futex_requeue",
        ],
        // Waiting on many descriptors.
        "@io-event": [
            "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
            "epoll_pwait", "epoll_pwait2",
        ],
        // `@ipc-lite` plus System V IPC and POSIX message queues (scoped by the jail's IPC namespace).
        "@ipc": [
            "@ipc-lite", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semctl", "semtimedop",
            "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
            "mq_notify", "mq_getsetattr",
        ],
        "@dangerous": dangerousNames,
    ]

    /// Expands groups recursively; unknown names are returned as they are.
    public static func expand(_ entries: [String]) -> Set<String> {
        var out = Set<String>()
        var seen = Set<String>()
        func visit(_ entry: String) {
            if let members = groups[entry] {
                guard seen.insert(entry).inserted else { return }
                members.forEach(visit)
            } else {
                out.insert(entry)
            }
        }
        entries.forEach(visit)
        return out
    }

    /// How `entry` (a syscall or a group) reaches `syscall`: the chain of groups from `entry` down,
    /// e.g. `["@default", "@file-system"]` for `openat`, `["openat"]` when named directly, or nil.
    public static func path(from entry: String, to syscall: String) -> [String]? {
        var seen = Set<String>()
        func visit(_ node: String) -> [String]? {
            guard let members = groups[node] else { return node == syscall ? [node] : nil }
            guard seen.insert(node).inserted else { return nil }
            if members.contains(syscall) { return [node] }
            for member in members where groups[member] != nil {
                if let rest = visit(member) { return [node] + rest }
            }
            return nil
        }
        return visit(entry)
    }
}
