import EdgyPolicy
import Testing

@Suite struct CatalogTests {
    @Test func namesAreUnique() {
        #expect(Set(SyscallCatalog.allNames).count == SyscallCatalog.allNames.count)
        #expect(SyscallCatalog.allNames.count > 360)
    }

    @Test(arguments: SyscallCatalog.groups.keys.sorted())
    func everyMemberIsASyscallOrGroup(group: String) {
        #expect(group.hasPrefix("@"))
        let known = Set(SyscallCatalog.allNames)
        for member in SyscallCatalog.groups[group] ?? [] {
            #expect(known.contains(member) || SyscallCatalog.groups[member] != nil, "\(group) names \(member)")
        }
    }

    @Test(arguments: SyscallCatalog.groups.keys.sorted().filter { $0 != "@dangerous" })
    func noDangerousSyscallOutsideDangerous(group: String) {
        let leaked = SyscallCatalog.expand([group]).intersection(SyscallCatalog.dangerousNames)
        #expect(leaked.isEmpty, "\(group) contains \(leaked.sorted())")
    }

    @Test func dangerousListsTheWholeDangerousSet() {
        #expect(SyscallCatalog.expand(["@dangerous"]) == Set(SyscallCatalog.dangerousNames))
        for name in ["mount", "ptrace", "bpf", "unshare", "setns", "io_uring_setup", "personality", "lsm_set_self_attr"] {
            #expect(SyscallCatalog.dangerousNames.contains(name))
        }
    }

    static let mustHaves = [
        "read", "write", "openat", "close", "fstat", "newfstatat", "statx", "lseek", "mmap", "mprotect", "munmap",
        "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl", "pread64", "access", "pipe2",
        "dup2", "getpid", "clone", "clone3", "fork", "vfork", "execve", "exit", "exit_group", "wait4", "kill",
        "uname", "fcntl", "getdents64", "getcwd", "chdir", "rename", "mkdir", "unlink", "readlink", "umask",
        "getrlimit", "prlimit64", "getrusage", "sysinfo", "getuid", "setuid", "setresuid", "setgroups",
        "arch_prctl", "prctl", "futex", "set_tid_address", "set_robust_list", "rseq", "getrandom",
        "clock_gettime", "clock_nanosleep", "nanosleep", "epoll_create1", "epoll_ctl", "epoll_pwait",
        "eventfd2", "poll", "select", "pselect6", "socket", "connect", "sendto", "recvfrom", "madvise",
        "mremap", "membarrier", "sched_yield", "sched_getaffinity", "sigaltstack", "tgkill", "gettid",
        "memfd_create", "copy_file_range", "faccessat2", "close_range", "getrlimit", "utimensat",
    ]

    @Test func defaultCoversWhatOrdinaryProgramsNeed() {
        let defaults = SyscallCatalog.expand(["@default"])
        let missing = Self.mustHaves.filter { !defaults.contains($0) }
        #expect(missing.isEmpty, "missing from @default: \(missing)")
    }

    @Test func pathNamesTheGroupChain() {
        #expect(SyscallCatalog.path(from: "@default", to: "openat") == ["@default", "@file-system"])
        #expect(SyscallCatalog.path(from: "openat", to: "openat") == ["openat"])
        #expect(SyscallCatalog.path(from: "@default", to: "ptrace") == nil)
    }
}
