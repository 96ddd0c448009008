import CSeccomp
import EdgyPolicy
import Glibc
import Synchronization

/// Compiles a policy's `[seccomp]` table into a BPF program with libseccomp, in the parent.
///
/// The filter it builds, for the native x86_64 ABI only:
/// - every syscall in `expand(allow) − expand(deny)` is allowed, except four that are narrowed:
///   `clone` (no namespace flags), `clone3` (fails with `ENOSYS`), `socket` (listed families) and
///   `ioctl` (all requests but `ioctl_deny`);
/// - everything else takes the policy's `default_action`;
/// - any other ABI (i386 via `int $0x80`, x32 via the `0x40000000` bit) kills the process: the
///   bad-arch action is `kill_process`, and libseccomp 2.5.4 already routes x32 numbers
///   (`nr >= 0x40000000`) to the bad-arch action when x32 is not in the filter (checked by test).
public enum SeccompCompiler {
    /// Builds the filter for `seccomp`.
    ///
    /// - Parameter seccomp: the effective `[seccomp]` table.
    /// - Returns: the exported program, ready to be copied into the spawn arena.
    /// - Throws: ``SeccompError`` naming an unknown syscall, family or ioctl, or a libseccomp failure.
    public static func compile(_ seccomp: Policy.Seccomp) throws(SeccompError) -> SeccompProgram {
        let defaultAction = try action(seccomp.defaultAction)
        let allowed = try allowedSyscalls(seccomp)
        let families = try seccomp.socketFamilies.map { (name: String) throws(SeccompError) -> SocketFamily in
            guard let family = SocketFamily.named(name) else { throw .unknownSocketFamily(name) }
            return family
        }
        let deniedIoctls = try seccomp.ioctlDeny.map { (name: String) throws(SeccompError) -> UInt32 in
            guard let value = IoctlRequest.value(name) else { throw .unknownIoctl(name) }
            return value
        }

        guard let ctx = seccomp_init(defaultAction) else { throw .libseccomp(stage: "seccomp_init", errno: EINVAL) }
        defer { seccomp_release(ctx) }
        // Anything that is not the native ABI dies, whatever the default action is.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, Action.killProcess), "attr ACT_BADARCH")
        // CTL_NNP only matters to seccomp_load(), which we never call: the jail sets
        // no_new_privs itself before its raw seccomp(2). Off, so nothing depends on libseccomp doing it.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "attr CTL_NNP")
        // A binary tree over syscall numbers instead of a linear if-chain: ~300 allowed syscalls
        // cost O(log n) instructions per syscall instead of O(n).
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "attr CTL_OPTIMIZE")

        for name in allowed.sorted() {
            let number = seccomp_syscall_resolve_name(name)
            switch name {
            case "clone" where !seccomp.allowNamespaceClone:
                // x86_64 clone(flags, stack, parent_tid, child_tid, tls): flags is arg0. The kernel
                // uses only its low 32 bits and every CLONE_NEW* flag lives there.
                try add(ctx, Action.allow, number, [.init(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: CloneFlags.namespaces, datum_b: 0)])
            case "clone3" where !seccomp.allowNamespaceClone:
                // clone3's flags are in memory, out of seccomp's reach. ENOSYS makes glibc fall
                // back to clone(2), whose flags are checked above (what Docker's profile does).
                // libseccomp refuses a rule whose action is the default action (EACCES).
                if defaultAction != Action.errno(ENOSYS) { try add(ctx, Action.errno(ENOSYS), number, []) }
            case "socket":
                // socket(family, type, protocol): one exact-match rule per family. Exact 64-bit
                // equality is the safe direction: garbage in the high bits is refused.
                for family in families {
                    try add(ctx, Action.allow, number, [.init(arg: 0, op: SCMP_CMP_EQ, datum_a: family.value, datum_b: 0)])
                }
            case "ioctl" where !deniedIoctls.isEmpty:
                // See `allowedIoctlBlocks`: allow rules that together cover every request but the denied ones.
                for block in allowedIoctlBlocks(excluding: deniedIoctls) {
                    try add(ctx, Action.allow, number, [.init(arg: 1, op: SCMP_CMP_MASKED_EQ, datum_a: UInt64(block.mask), datum_b: UInt64(block.value))])
                }
            default:
                try add(ctx, Action.allow, number, [])
            }
        }
        return try export(ctx)
    }

    /// Refuses a table that does not allow what the jail calls between loading the filter and the
    /// workload's first instruction: a notification there would wait for a supervisor that is
    /// itself waiting for the jail to exec. (Policy files get the same check with file and line.)
    public static func checkJailStart(_ seccomp: Policy.Seccomp) throws(SeccompError) {
        if seccomp.defaultAction == .log { return }
        let allowed = try allowedSyscalls(seccomp)
        if let missing = PolicyVocabulary.jailStartSyscalls.first(where: { !allowed.contains($0) }) {
            throw .jailStartDenied(missing)
        }
    }

    /// The filter of a learning run: the jail's own start-up calls are allowed, every other call
    /// (any ABI) becomes a user notification for the supervisor to record and answer.
    public static func compileLearning() throws(SeccompError) -> SeccompProgram {
        try compile(Policy.Seccomp(defaultAction: .killProcess, allow: PolicyVocabulary.jailStartSyscalls, deny: [],
                                   socketFamilies: [], ioctlDeny: [], allowNamespaceClone: true)).killsAsNotifications
    }

    /// The syscall names `seccomp` allows, `expand(allow) − expand(deny)` (before the narrowing of
    /// clone, clone3, socket and ioctl by their arguments).
    public static func allowedSyscallNames(_ seccomp: Policy.Seccomp) throws(SeccompError) -> Set<String> {
        try allowedSyscalls(seccomp)
    }

    /// `expand(allow) − expand(deny)`, every name checked against the catalog and libseccomp.
    static func allowedSyscalls(_ seccomp: Policy.Seccomp) throws(SeccompError) -> Set<String> {
        let known = Set(SyscallCatalog.allNames)
        let allow = SyscallCatalog.expand(seccomp.allow)
        let deny = SyscallCatalog.expand(seccomp.deny)
        for name in allow.union(deny).sorted() where !known.contains(name) && seccomp_syscall_resolve_name(name) < 0 {
            throw .unknownSyscall(name)
        }
        let allowed = allow.subtracting(deny)
        // Newer kernels' syscalls are in the catalog but libseccomp 2.5.4 has no number for them.
        for name in allowed.sorted() where seccomp_syscall_resolve_name(name) < 0 {
            throw .unsupportedSyscall(name)
        }
        return allowed
    }

    /// The masked-equality blocks `(request & mask) == value` whose union is every 32-bit ioctl
    /// request except `denied`.
    ///
    /// libseccomp 2.5.4 cannot say "allow ioctl except X": an unconditional allow swallows
    /// conditional rules for the same syscall (they vanish from the filter), a conditional rule
    /// with the default action is refused (`EACCES`), and there is no masked not-equal nor two
    /// comparisons of one argument in one rule (`EINVAL`). So the complement is written as allow
    /// rules: for one denied value that is 32 prefix blocks ("equal to X above bit i, different at
    /// bit i"), for TIOCSTI + TIOCLINUX 34. Masks keep the high 32 bits out, because the kernel
    /// truncates `cmd` to `unsigned int`: `0x1_00005412` is TIOCSTI and must stay denied.
    /// A denied request therefore takes the policy's default action.
    static func allowedIoctlBlocks(excluding denied: [UInt32]) -> [(mask: UInt32, value: UInt32)] {
        var blocks: [(mask: UInt32, value: UInt32)] = []
        func cover(prefix: UInt32, freeBits: Int, denied: [UInt32]) {
            if denied.isEmpty {
                blocks.append((mask: freeBits == 32 ? 0 : ~UInt32(0) << freeBits, value: prefix))
                return
            }
            guard freeBits > 0 else { return }  // this single request is denied
            let bit = UInt32(1) << (freeBits - 1)
            cover(prefix: prefix, freeBits: freeBits - 1, denied: denied.filter { $0 & bit == 0 })
            cover(prefix: prefix | bit, freeBits: freeBits - 1, denied: denied.filter { $0 & bit != 0 })
        }
        cover(prefix: 0, freeBits: 32, denied: Array(Set(denied)))
        return blocks
    }

    static func action(_ action: Policy.SeccompAction) throws(SeccompError) -> UInt32 {
        switch action {
        case .killProcess: return Action.killProcess
        case .log: return Action.log
        case .errno(let value, _):
            guard (1...4095).contains(value) else { throw .invalidErrno(value) }
            return Action.errno(value)
        }
    }

    private static func add(_ ctx: scmp_filter_ctx, _ action: UInt32, _ number: Int32, _ conditions: [scmp_arg_cmp]) throws(SeccompError) {
        let rc = conditions.withUnsafeBufferPointer { buffer in
            seccomp_rule_add_array(ctx, action, number, UInt32(buffer.count), buffer.baseAddress)
        }
        try check(rc, "rule_add(\(number))")
    }

    private static let exportCounter = Atomic<UInt64>(0)

    /// libseccomp 2.5.4 exports only to an fd, so export into an unlinked POSIX shared-memory file
    /// and read it back. Not a pipe: a program larger than the pipe buffer would block the export
    /// forever. Not memfd_create: Swift's Glibc module does not expose it (it is `_GNU_SOURCE`).
    /// shm_open sets FD_CLOEXEC, so a concurrent spawn elsewhere in the process cannot inherit it.
    private static func export(_ ctx: scmp_filter_ctx) throws(SeccompError) -> SeccompProgram {
        var fd: Int32 = -1
        while fd < 0 {
            let name = "/edgy-seccomp-\(getpid())-\(exportCounter.add(1, ordering: .relaxed).newValue)"
            fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0o600)
            if fd >= 0 { shm_unlink(name); break }
            guard errno == EEXIST || errno == EINTR else { throw .libseccomp(stage: "shm_open", errno: errno) }
        }
        defer { close(fd) }
        try check(seccomp_export_bpf(ctx, fd), "export_bpf")
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0 else { throw .libseccomp(stage: "lseek", errno: errno) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .libseccomp(stage: "pread", errno: n == 0 ? EIO : errno) }
            done += n
        }
        return SeccompProgram(bytes: bytes)
    }

    private static func check(_ rc: Int32, _ stage: String) throws(SeccompError) {
        if rc < 0 { throw .libseccomp(stage: stage, errno: -rc) }
    }
}

/// SCMP_ACT_* values; the function-like macros do not import into Swift.
enum Action {
    static let killProcess: UInt32 = 0x8000_0000
    static let allow: UInt32 = 0x7fff_0000
    static let log: UInt32 = 0x7ffc_0000
    static func errno(_ value: Int32) -> UInt32 { 0x0005_0000 | (UInt32(value) & 0xffff) }
}
