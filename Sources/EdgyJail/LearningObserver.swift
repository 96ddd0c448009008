import CEdgyJail
import EdgyPolicy
import EdgySeccomp
import EdgySyscallArguments
import EdgySystem
import Glibc
import Synchronization

/// Collects what one learning run used. Give one to `JailRequest.learner`; read `learned` once
/// the run has returned.
public final class SyscallLearner: Sendable {
    private let state = Mutex(LearnedUse())

    public init() {}

    /// What the run used (empty until it has ended).
    public var learned: LearnedUse { state.withLock { $0 } }

    func store(_ use: LearnedUse) { state.withLock { $0 = use } }
}

/// Answers a learning run's notifications. Under the learning filter every syscall but the
/// jail's own start-up calls (`PolicyVocabulary.jailStartSyscalls`) stops and waits here: it is
/// recorded with its argument class, then either continued (what the `--from` policy allows runs
/// as it would have) or refused with an errno (what that policy would have killed or refused). A
/// refused call is a warning in the proposal, never an entry: learning widens nothing.
///
/// Arguments in registers (flags, families, requests) are what the call will run with. Strings
/// and addresses are read from the caller's memory while it waits, and only describe: nothing is
/// allowed because of them, so a thread changing them meanwhile can only mislabel its own record.
struct LearningObserver {
    private let rules: LearningRules
    private let execStart: UInt64
    private(set) var use = LearnedUse()
    private var executables: Set<String> = []

    /// `traced`: the run is observed by the learning tracer, not a seccomp listener.
    init(policy: Policy, program: String, execStart: UInt64, traced: Bool) {
        rules = LearningRules(policy.seccomp)
        self.execStart = execStart
        use.tracedRuns = traced ? 1 : 0
        for name in PolicyVocabulary.jailStartSyscalls { use.syscalls[name] = LearnedUse.Count() }
        if program.hasPrefix("/") { use.files[SyscallArguments.normalized(program), default: LearnedUse.FileUse()].exec += 1 }
    }

    /// Answers the calls waiting in `calls` (at most 256, so that the supervision loop still sees
    /// its deadlines and output between batches). False once no more will come.
    mutating func answerPending(_ calls: StoppedCalls) -> Bool {
        for _ in 0..<256 {
            guard answer(calls) else { return false }
            var entry = pollfd(fd: calls.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 0) == 1, entry.revents & Int16(POLLIN) != 0 else { return true }
        }
        return true
    }

    /// Receives one call and answers it; false once no more will come.
    private mutating func answer(_ calls: StoppedCalls) -> Bool {
        var call = edgy_seccomp_violation()
        let received = calls.receive(&call)
        if received == -ENOENT || received == -EINTR { return true }  // the caller died meanwhile; or retry
        guard received == 0 else { return false }
        let at = Double(monotonicNanos() &- execStart) / 1e6
        let verdict = record(call, atMs: at)
        // The caller still waits, so its pid still names it and what was read was its memory.
        guard calls.isWaiting(call.id) else { return true }
        calls.answer(call.id, error: verdict)
        return true
    }

    /// Records `call`; returns 0 to let it run, or the errno it fails with.
    private mutating func record(_ call: edgy_seccomp_violation, atMs at: Double) -> Int32 {
        let seen = LearnedUse.Count(count: 1, firstMs: at)
        guard SyscallNames.isNative(number: call.nr, arch: call.arch),
              let name = SyscallNames.name(ofNativeSyscall: call.nr)
        else {
            return refuse(SyscallNames.describe(number: call.nr, arch: call.arch), "not a native x86_64 syscall", EPERM, seen)
        }
        noteExecutable(of: call.pid)
        switch name {
        case "clone":
            let namespaces = call.args.0 & CloneFlags.namespaces
            if namespaces != 0 && !rules.allowNamespaceClone {
                return refuse("clone(\(CloneFlags.describeNamespaces(namespaces)))", "creates namespaces (allow_namespace_clone = false)", EPERM, seen)
            }
            use.clones[namespaces == 0 ? "no namespace flags" : CloneFlags.describeNamespaces(namespaces), default: .init()].add(seen)
        case "clone3" where !rules.allowNamespaceClone:
            // What the compiled filter does with clone3: ENOSYS, and glibc falls back to clone.
            guard rules.allowed.contains(name) else { return refuse(name, "not in the allow list", ENOSYS, seen) }
            use.syscalls[name, default: .init()].add(seen)
            return ENOSYS
        case "socket":
            let family = rules.familyName(call.args.0)
            guard rules.families.contains(family) else {
                return refuse("socket(\(family))", "socket family \(family) is not in socket_families", rules.refusalErrno, seen)
            }
            use.socketFamilies[family, default: .init()].add(seen)
        case "ioctl":
            let request = UInt32(truncatingIfNeeded: call.args.1)
            let label = IoctlRequest.known.first { $0.value == request }?.key ?? "0x" + String(request, radix: 16)
            if rules.deniedIoctls.contains(request) {
                return refuse("ioctl(\(label))", "\(label) is in ioctl_deny", rules.refusalErrno, seen)
            }
            use.ioctls[label, default: .init()].add(seen)
        default:
            break
        }
        guard rules.allowed.contains(name) || rules.logsTheRest else {
            let reason = rules.denied.contains(name) ? "on the deny list" : "not in the allow list"
            return refuse(name, reason, rules.refusalErrno, seen)
        }
        use.syscalls[name, default: .init()].add(seen)
        notePaths(name, call)
        noteDestination(name, call, seen)
        return 0
    }

    private mutating func refuse(_ what: String, _ reason: String, _ errno: Int32, _ seen: LearnedUse.Count) -> Int32 {
        if use.refused[what] == nil {
            use.refused[what] = LearnedUse.Refusal(count: seen, reason: reason, errno: errnoName(errno))
        } else {
            use.refused[what]?.count.add(seen)
        }
        return errno
    }

    // MARK: Files

    /// The path arguments of file syscalls: (index of the dirfd argument or nil, index of the path).
    private static let pathArguments: [String: (dirfd: Int?, path: Int, access: Access)] = [
        "open": (nil, 0, .byFlags(1)), "openat": (0, 1, .byFlags(2)), "openat2": (0, 1, .byHow(2)),
        "creat": (nil, 0, .write), "execveat": (0, 1, .exec),
        "stat": (nil, 0, .lookup), "lstat": (nil, 0, .lookup), "newfstatat": (0, 1, .lookup),
        "statx": (0, 1, .lookup), "access": (nil, 0, .lookup), "faccessat": (0, 1, .lookup),
        "faccessat2": (0, 1, .lookup), "readlink": (nil, 0, .lookup), "readlinkat": (0, 1, .lookup),
        "chdir": (nil, 0, .lookup), "statfs": (nil, 0, .lookup), "getxattr": (nil, 0, .lookup),
        "lgetxattr": (nil, 0, .lookup),
        "mkdir": (nil, 0, .write), "mkdirat": (0, 1, .write), "unlink": (nil, 0, .write),
        "unlinkat": (0, 1, .write), "rmdir": (nil, 0, .write), "rename": (nil, 0, .write),
        "renameat": (0, 1, .write), "renameat2": (0, 1, .write), "truncate": (nil, 0, .write),
        "chmod": (nil, 0, .write), "fchmodat": (0, 1, .write), "symlink": (nil, 1, .write),
        "symlinkat": (1, 2, .write), "link": (nil, 1, .write), "linkat": (2, 3, .write),
        "utimensat": (0, 1, .write),
    ]

    private enum Access {
        case byFlags(Int), byHow(Int), write, lookup, exec
    }

    private mutating func notePaths(_ name: String, _ call: edgy_seccomp_violation) {
        guard let spec = Self.pathArguments[name] else { return }
        let args = [call.args.0, call.args.1, call.args.2, call.args.3, call.args.4, call.args.5]
        guard let path = readPath(call.pid, address: args[spec.path], dirfd: spec.dirfd.map { args[$0] }) else {
            use.unreadablePaths += 1
            return
        }
        var entry = use.files[path, default: LearnedUse.FileUse()]
        switch spec.access {
        case .byFlags(let index): Self.count(flags: args[index], into: &entry)
        case .byHow(let index):
            var flags: UInt64 = 0
            if edgy_read_remote(call.pid, args[index], &flags, 8) == 8 { Self.count(flags: flags, into: &entry) } else { entry.read += 1 }
        case .write: entry.write += 1
        case .lookup: entry.lookup += 1
        case .exec: entry.exec += 1
        }
        use.files[path] = entry
    }

    private static func count(flags: UInt64, into entry: inout LearnedUse.FileUse) {
        let accessMode = Int32(truncatingIfNeeded: flags) & O_ACCMODE
        let creates = Int32(truncatingIfNeeded: flags) & (O_CREAT | O_TRUNC) != 0
        if accessMode == O_RDONLY && !creates { entry.read += 1 } else { entry.write += 1 }
    }

    /// The path at `address` in `tid`'s memory, made absolute against its directory fd (or its
    /// working directory for AT_FDCWD) as the jail sees them, `.` and `..` folded. Nil when the
    /// string cannot be read, or names nothing (an empty path: the call is on the fd itself).
    private func readPath(_ tid: pid_t, address: UInt64, dirfd: UInt64?) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let length = edgy_read_remote_string(tid, address, &buffer, buffer.count)
        guard length > 0 else { return nil }
        let path = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasPrefix("/") { return SyscallArguments.normalized(path) }
        let directoryFD = dirfd.map { Int32(truncatingIfNeeded: $0) } ?? AT_FDCWD
        let link = directoryFD == AT_FDCWD ? "/proc/\(tid)/cwd" : "/proc/\(tid)/fd/\(directoryFD)"
        // /proc's links resolve against the jail's root: "/work", not a host path.
        guard let base = Self.readLink(link), base.hasPrefix("/") else { return nil }
        return SyscallArguments.normalized(path, base: base)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Executables

    /// The executable of each process the first time it makes a notified call, and the ELF
    /// interpreter the kernel loaded for it: execve itself is allowed without asking (the jail's
    /// own exec must not wait for the supervisor), so this is how the mounts they came from count
    /// as used.
    private mutating func noteExecutable(of tid: pid_t) {
        guard let executable = Self.readLink("/proc/\(tid)/exe"), executable.hasPrefix("/"),
              executables.insert(executable).inserted else { return }
        use.files[executable, default: LearnedUse.FileUse()].exec += 1
        if let interpreter = Self.elfInterpreter("/proc/\(tid)/exe") {
            use.files[SyscallArguments.normalized(interpreter), default: LearnedUse.FileUse()].exec += 1
        }
    }

    /// PT_INTERP of the ELF file at `path`, or nil (static, a script, unreadable).
    static func elfInterpreter(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return SyscallArguments.elfInterpreter { offset, count in
            guard offset <= UInt64(Int64.max) else { return nil }
            var bytes = [UInt8](repeating: 0, count: count)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? bytes : nil
        }
    }

    // MARK: Network

    private mutating func noteDestination(_ name: String, _ call: edgy_seccomp_violation, _ seen: LearnedUse.Count) {
        let (address, length): (UInt64, UInt64)
        switch name {
        case "connect": (address, length) = (call.args.1, call.args.2)
        case "sendto" where call.args.4 != 0: (address, length) = (call.args.4, call.args.5)
        default: return
        }
        var bytes = [UInt8](repeating: 0, count: Int(min(length, 110)))
        guard bytes.count >= 2, edgy_read_remote(call.pid, address, &bytes, bytes.count) == bytes.count,
              let destination = SyscallArguments.describe(sockaddr: bytes) else { return }
        use.destinations[destination, default: .init()].add(seen)
    }
}

/// What the `--from` policy's compiled filter would do with a call, asked without compiling it.
struct LearningRules {
    let allowed: Set<String>
    let denied: Set<String>
    let families: Set<String>
    let deniedIoctls: Set<UInt32>
    let allowNamespaceClone: Bool
    /// `default_action = "log"`: nothing is refused.
    let logsTheRest: Bool
    /// What a refused call gets: the policy's `errno:NAME`, else EPERM (where it would have died).
    let refusalErrno: Int32

    init(_ seccomp: Policy.Seccomp) {
        allowed = (try? SeccompCompiler.allowedSyscallNames(seccomp)) ?? []
        denied = SyscallCatalog.expand(seccomp.deny)
        families = Set(seccomp.socketFamilies.map { $0.lowercased() })
        deniedIoctls = Set(seccomp.ioctlDeny.compactMap(IoctlRequest.value))
        allowNamespaceClone = seccomp.allowNamespaceClone
        switch seccomp.defaultAction {
        case .log: (logsTheRest, refusalErrno) = (true, EPERM)
        case .errno(let value, _): (logsTheRest, refusalErrno) = (false, value)
        case .killProcess: (logsTheRest, refusalErrno) = (false, EPERM)
        }
    }

    func familyName(_ value: UInt64) -> String {
        SocketFamily.known.first { $0.value == value }?.name ?? "family \(value)"
    }
}
