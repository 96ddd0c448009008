/// The fixed vocabularies of policy files: keys per table, enumerated values and maxima.
///
/// One place, so the decoder, the docs test and `edgy policy explain` cannot drift apart.
public enum PolicyVocabulary {
    /// Table name ("" for the top level) → keys the decoder accepts in it.
    public static let knownKeys: [String: [String]] = [
        "": ["description", "extends"],
        "run": ["command", "entry", "workdir", "env", "task_env", "allow_command_override", "hostname"],
        "limits": [
            "wall_time_s", "cpu_time_s", "memory_mib", "pids", "open_files", "file_size_mib",
            "workdir_mib", "tmp_mib", "stdout_kib", "stderr_kib", "output_overflow",
            "pending_signals", "mqueue_kib", "memlock_kib",
        ],
        "mounts": ["source", "destination", "required"],
        "tmpfs": ["destination", "size_mib"],
        "network": ["mode"],
        "identity": ["uid", "gid", "user_namespace"],
        "seccomp": ["default_action", "allow", "deny", "socket_families", "ioctl_deny", "allow_namespace_clone"],
        "retry": ["max_attempts", "retry_on"],
        "access": ["roles"],
    ]

    /// Tables written as `[[name]]` (arrays of tables); the others are `[name]`.
    public static let arrayTables: Set<String> = ["mounts", "tmpfs"]

    /// Upper bounds for numeric limits: above these a value is a typo, not a policy.
    public static let maxima: [String: Double] = [
        "wall_time_s": 86_400, "cpu_time_s": 86_400,
        "memory_mib": 65_536, "pids": 32_768, "open_files": 65_536,
        "file_size_mib": 65_536, "workdir_mib": 65_536, "tmp_mib": 65_536,
        "stdout_kib": 1_048_576, "stderr_kib": 1_048_576,
        "size_mib": 65_536, "max_attempts": 100,
        "pending_signals": 4096, "mqueue_kib": 65_536, "memlock_kib": 65_536,
    ]

    /// Outcome names a policy may retry on (`[retry] retry_on`).
    public static let retryableOutcomes: [String] = [
        "exited", "signaled", "wall_timeout", "cpu_timeout", "memory_limit", "seccomp_violation", "output_limit",
    ]

    /// Roles that `[access] roles` may name.
    public static let roles: [String] = ["admin", "submitter", "reader"]

    /// Address families `[seccomp] socket_families` may name.
    public static let socketFamilies: [String] = [
        "unix", "inet", "inet6", "netlink", "packet", "vsock", "alg", "can", "bluetooth", "xdp", "tipc",
    ]

    /// Syscalls the jail itself makes after its filter is loaded, so every filter must allow them:
    /// the handoff of the filter's listener to the supervisor (write, read) and the exec.
    public static let jailStartSyscalls: [String] = ["read", "write", "execve"]

    /// Syscalls that let a workload escape, inspect or attack the host. Base policies deny them;
    /// allowing one (directly or through a group) draws a warning.
    public static let dangerousSyscalls: [String] = [
        "ptrace", "bpf", "userfaultfd", "io_uring_setup", "keyctl", "mount",
    ]

    /// Further real x86_64 syscalls that base policies deny. Accepted as names even while
    /// `SyscallCatalog` is incomplete, so a deny list never fails for a name the kernel has.
    static let denyableSyscalls: [String] = [
        "io_uring_enter", "io_uring_register", "add_key", "request_key", "umount2", "pivot_root",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "perf_event_open", "process_vm_readv", "process_vm_writev", "unshare", "setns",
        "swapon", "swapoff", "reboot", "open_by_handle_at", "name_to_handle_at", "fsopen",
        "fsmount", "fsconfig", "move_mount", "open_tree", "chroot", "acct", "quotactl",
        "settimeofday", "clock_settime", "adjtimex", "syslog", "iopl", "ioperm", "lookup_dcookie",
        "vhangup", "nfsservctl", "uselib", "personality", "mount_setattr",
    ]

    /// Every syscall name accepted in `allow`/`deny`, besides groups.
    static var syscallNames: Set<String> {
        Set(SyscallCatalog.allNames).union(dangerousSyscalls).union(denyableSyscalls)
    }

    /// Seccomp default actions other than `errno:NAME`.
    static let plainActions = ["kill_process", "log"]
}
