/// The fixed vocabularies of policy files: keys per table, enumerated values and maxima.
///
/// One place, so the decoder, the docs test and `edgy policy explain` cannot drift apart; the
/// keys themselves are declared in `PolicySchema`.
public enum PolicyVocabulary {
    /// Table name ("" for the top level) → keys the decoder accepts in it (from `PolicySchema`).
    public static let knownKeys: [String: [String]] = {
        var keys: [String: [String]] = [:]
        for key in PolicySchema.keys {
            switch key.shape {
            case .scalar, .arrayTableField: keys[key.table, default: []].append(key.name)
            case .arrayTable: keys[key.name, default: []] += []
            }
        }
        return keys
    }()

    /// Tables written as `[[name]]` (arrays of tables); the others are `[name]`.
    public static let arrayTables: Set<String> = Set(PolicySchema.keys.filter { $0.shape == .arrayTable }.map(\.name))

    /// Upper bounds for numbers, by key name: above these a value is a typo, not a policy.
    public static let maxima: [String: Double] = Dictionary(
        PolicySchema.keys.compactMap { key in key.maximum.map { (key.name, $0) } }, uniquingKeysWith: { first, _ in first })

    /// Outcome names a policy may retry on (`[retry] retry_on`).
    public static let retryableOutcomes: [String] = [
        "exited", "signaled", "wall_timeout", "cpu_timeout", "memory_limit", "seccomp_violation", "output_limit",
    ]

    /// Roles that `[access] roles` may name.
    public static let roles: [String] = ["admin", "submitter", "reader"]

    /// Address families `[seccomp] socket_families` may name.
    public static let socketFamilies: [String] = SocketFamily.known.map(\.name)

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
