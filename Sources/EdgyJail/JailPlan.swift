import CEdgyJail
import EdgyModel
import EdgyPolicy
import EdgySystem
import Glibc

/// A request that cannot become a plan: bad file paths, no command. Reported as `setup_error`
/// at stage "plan"; nothing was spawned.
public struct PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The flat, position-independent form of a jail that the C child reads (prepare in
/// the parent, apply in the child). One blob: the `edgy_plan` header, then strings, file bodies,
/// the op table, argv/envp tables and the seccomp program, referred to by their offset from the
/// start of the blob. The child maps it from a memfd after its gate opens, so a jail can be
/// cloned (and parked) before its plan exists.
struct JailPlan {
    /// Starts with room for the header, which `blob()` fills in; offset 0 means "absent".
    var arena = [UInt8](repeating: 0, count: MemoryLayout<edgy_plan>.stride)
    var ops: [edgy_fs_op] = []
    /// What each op does, for error messages: "mount /usr", "write /work/main.py".
    var opDescriptions: [String] = []
    var plan = edgy_plan()
    /// argv[0] as given, for "execve X: ENOENT".
    var program: String = ""

    mutating func string(_ s: String) -> UInt64 {
        let offset = UInt64(arena.count)
        arena.append(contentsOf: s.utf8)
        arena.append(0)
        return offset
    }

    mutating func align8() {
        while arena.count % 8 != 0 { arena.append(0) }
    }

    mutating func bytes(_ b: [UInt8]) -> UInt64 {
        align8()
        let offset = UInt64(arena.count)
        arena.append(contentsOf: b)
        return offset
    }

    mutating func offsetTable(_ offsets: [UInt64]) -> UInt64 {
        align8()
        let offset = UInt64(arena.count)
        for var value in offsets {
            withUnsafeBytes(of: &value) { arena.append(contentsOf: $0) }
        }
        return offset
    }

    mutating func op(
        _ kind: edgy_fs_op_kind, path: String, source: String? = nil, data: [UInt8]? = nil,
        dataString: String? = nil, mode: UInt32 = 0, mountFlags: UInt = 0, uid: UInt32 = 0,
        gid: UInt32 = 0, optional: Bool = false, describe: String
    ) {
        var op = edgy_fs_op()
        op.kind = kind.rawValue
        op.op_flags = optional ? UInt32(EDGY_OP_OPTIONAL) : 0
        op.mount_flags = UInt64(mountFlags)
        op.mode = mode
        op.uid = uid
        op.gid = gid
        op.path = string(path)
        op.source = source.map { string($0) } ?? 0
        if let data {
            op.data = bytes(data)
            op.data_len = UInt64(data.count)
        } else if let dataString {
            op.data = string(dataString)
        }
        ops.append(op)
        opDescriptions.append(describe)
    }

    /// The finished blob: the op table appended, the header written at offset 0.
    func blob() -> [UInt8] {
        var copy = self
        var header = plan
        copy.align8()
        header.ops = UInt64(copy.arena.count)
        header.n_ops = UInt32(ops.count)
        for var op in ops {
            withUnsafeBytes(of: &op) { copy.arena.append(contentsOf: $0) }
        }
        header.blob_len = UInt64(copy.arena.count)
        withUnsafeBytes(of: &header) { raw in
            copy.arena.replaceSubrange(0..<raw.count, with: raw)
        }
        return copy.arena
    }
}

/// The clone-time half of a jail: which namespaces, whose ids, the cgroup limits its pooled
/// cgroup is created with, and its whole filesystem plan (every mount, tmpfs size, hostname,
/// network mode and the ids files are owned by), which a parked jail has already built. Jails of
/// one shape are interchangeable until their task plan is written.
struct JailShape: Hashable, Sendable {
    var namespaces: UInt64
    var userNamespace: Bool
    var memoryBytes: UInt64?
    var pidsMax: Int?
    /// The filesystem plan's blob (`edgy_shape.fs`): equal blobs build equal filesystems.
    var filesystem: [UInt8]
    /// What each of its ops does, for error messages.
    var filesystemOps: [String]

    init(policy: Policy, cgroups: Bool, filesystem: JailPlan) {
        self.filesystem = filesystem.blob()
        self.filesystemOps = filesystem.opDescriptions
        var namespaces = EDGY_CLONE_NEWNS | EDGY_CLONE_NEWPID | EDGY_CLONE_NEWNET | EDGY_CLONE_NEWIPC | EDGY_CLONE_NEWUTS
        if policy.identity.userNamespace { namespaces |= EDGY_CLONE_NEWUSER }
        self.namespaces = namespaces
        self.userNamespace = policy.identity.userNamespace
        self.memoryBytes = cgroups ? UInt64(policy.limits.memoryMib) << 20 : nil
        self.pidsMax = cgroups ? policy.limits.pids : nil
    }

    /// Hashes the filesystem blob in bulk: the synthesized conformance combines its ~4 KB one
    /// byte at a time, on every pool lookup (it showed in profiles). Equality still compares it whole.
    func hash(into hasher: inout Hasher) {
        hasher.combine(namespaces)
        hasher.combine(userNamespace)
        hasher.combine(memoryBytes)
        hasher.combine(pidsMax)
        filesystem.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (a: JailShape, b: JailShape) -> Bool {
        a.namespaces == b.namespaces && a.userNamespace == b.userNamespace && a.memoryBytes == b.memoryBytes
            && a.pidsMax == b.pidsMax && a.filesystem == b.filesystem
    }

    /// The C shape for a clone with these stdio fds and (v2) cgroup fd. Its `fs` is left nil:
    /// point it into `filesystem` for the duration of the clone.
    func cShape(host: JailHostConfiguration, stdio: (Int32, Int32, Int32), cgroupFD: Int32?) -> edgy_shape {
        var s = edgy_shape()
        s.namespaces = namespaces
        s.cgroup_fd = cgroupFD ?? -1
        s.user_namespace = userNamespace ? 1 : 0
        if userNamespace {
            s.host_uid_base = host.hostIDBase
            s.host_gid_base = host.hostIDBase
            s.id_count = host.idCount
        }
        s.stdin_fd = stdio.0
        s.stdout_fd = stdio.1
        s.stderr_fd = stdio.2
        s.parent_death_signal = host.dieWithSupervisor ? SIGKILL : 0
        return s
    }
}

/// The two plans of one attempt: the filesystem (a function of the policy alone, built by the jail
/// before its request when it comes from the pool) and the task (files, command, ids, seccomp).
struct JailPlans {
    var filesystem: JailPlan
    var task: JailPlan
}

/// Turns a request into its plans. Pure apart from reading the host's filesystem metadata to tell
/// directories, files and symlinks apart among the mount sources.
struct PlanBuilder {
    let host: JailHostConfiguration

    private static let nodevNosuid = UInt(MS_NOSUID | MS_NODEV)

    func build(_ request: JailRequest, seccomp: [UInt8], lastCap: UInt32) throws(PlanError) -> JailPlans {
        let policy = request.policy
        let limits = policy.limits
        let root = host.stagingRoot
        var plan = JailPlan()
        var task = JailPlan()
        var made = Set<String>(["/"])

        func inRoot(_ path: String) -> String { path == "/" ? root : root + path }
        func mkdirs(_ path: String, mode: UInt32 = 0o755) {
            var current = ""
            for component in path.split(separator: "/") {
                current += "/" + component
                if made.insert(current).inserted {
                    plan.op(EDGY_OP_MKDIR, path: inRoot(current), mode: mode, describe: "mkdir \(current)")
                }
            }
        }
        func parent(_ path: String) -> String {
            guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
            return String(path[..<slash])
        }

        // Read-only binds of what the policy allows.
        for mount in policy.mounts {
            let dest = try Self.absolute(mount.destination, what: "mount destination")
            var st = stat()
            if lstat(mount.source, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
                // A symlink (e.g. /bin -> usr/bin on merged-/usr hosts) becomes the same symlink.
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(mount.source, &buffer, buffer.count - 1)
                if n > 0 {
                    let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    mkdirs(parent(dest))
                    if made.insert(dest).inserted {
                        plan.op(EDGY_OP_SYMLINK, path: inRoot(dest), source: target, describe: "symlink \(dest) -> \(target)")
                    }
                    continue
                }
            }
            let exists = stat(mount.source, &st) == 0
            if !exists && !mount.required { continue }
            var flags = UInt(MS_BIND | MS_RDONLY) | Self.nodevNosuid
            // A remount in a user namespace must keep the locked flags of the source mount.
            var vfs = statvfs()
            if exists, statvfs(mount.source, &vfs) == 0 {
                if vfs.f_flag & UInt(EDGY_ST_NOEXEC) != 0 { flags |= UInt(MS_NOEXEC) }
                if vfs.f_flag & UInt(EDGY_ST_NOATIME) != 0 { flags |= UInt(MS_NOATIME) }
                if vfs.f_flag & UInt(EDGY_ST_NODIRATIME) != 0 { flags |= UInt(MS_NODIRATIME) }
                if vfs.f_flag & UInt(EDGY_ST_RELATIME) != 0 { flags |= UInt(MS_RELATIME) }
            }
            if exists && (st.st_mode & S_IFMT) != S_IFDIR {
                mkdirs(parent(dest))
                plan.op(EDGY_OP_MKFILE, path: inRoot(dest), mode: 0o644, describe: "create mount point \(dest)")
            } else {
                mkdirs(dest)
            }
            plan.op(
                EDGY_OP_BIND, path: inRoot(dest), source: mount.source, mountFlags: flags,
                optional: !mount.required, describe: "mount \(mount.source)")
        }

        // /proc: a fresh one for the new PID namespace.
        mkdirs("/proc")
        plan.op(EDGY_OP_PROC, path: inRoot("/proc"), mountFlags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), describe: "mount /proc")

        // A minimal /dev: a few harmless devices bound from the host, no tty.
        mkdirs("/dev")
        plan.op(EDGY_OP_TMPFS, path: inRoot("/dev"), dataString: "size=64k,nr_inodes=64,mode=0755",
                mountFlags: UInt(MS_NOSUID | MS_NOEXEC), describe: "mount /dev")
        for device in ["null", "zero", "full", "random", "urandom"] {
            plan.op(EDGY_OP_MKFILE, path: inRoot("/dev/\(device)"), mode: 0o666, describe: "create /dev/\(device)")
            plan.op(EDGY_OP_BIND, path: inRoot("/dev/\(device)"), source: "/dev/\(device)",
                    mountFlags: UInt(MS_BIND | MS_NOSUID | MS_NOEXEC), describe: "mount /dev/\(device)")
        }
        for (link, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                               ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            plan.op(EDGY_OP_SYMLINK, path: inRoot("/dev/\(link)"), source: target, describe: "symlink /dev/\(link)")
        }
        plan.op(EDGY_OP_MKDIR, path: inRoot("/dev/shm"), mode: 0o755, describe: "mkdir /dev/shm")
        plan.op(EDGY_OP_TMPFS, path: inRoot("/dev/shm"), dataString: "size=\(limits.tmpMib)m,nr_inodes=1024,mode=1777",
                mountFlags: Self.nodevNosuid, describe: "mount /dev/shm")

        // Writable, size-capped tmpfs: /tmp, the policy's extra ones, and the working directory.
        let uid = policy.identity.uid, gid = policy.identity.gid
        mkdirs("/tmp")
        plan.op(EDGY_OP_TMPFS, path: inRoot("/tmp"), dataString: "size=\(limits.tmpMib)m,nr_inodes=16384,mode=1777",
                mountFlags: Self.nodevNosuid, describe: "mount /tmp")
        for extra in policy.tmpfs {
            let dest = try Self.absolute(extra.destination, what: "tmpfs destination")
            mkdirs(dest)
            plan.op(EDGY_OP_TMPFS, path: inRoot(dest),
                    dataString: "size=\(extra.sizeMib)m,nr_inodes=16384,mode=0755,uid=\(uid),gid=\(gid)",
                    mountFlags: Self.nodevNosuid, describe: "mount \(dest)")
        }
        let workdir = try Self.absolute(policy.run.workdir, what: "workdir")
        mkdirs(workdir)
        plan.op(EDGY_OP_TMPFS, path: inRoot(workdir),
                dataString: "size=\(limits.workdirMib)m,nr_inodes=16384,mode=0755,uid=\(uid),gid=\(gid)",
                mountFlags: Self.nodevNosuid, describe: "mount \(workdir)")

        // The task's files, straight from memory into the jail's tmpfs, after pivot_root: paths
        // inside the jail.
        var madeInWorkdir = Set<String>()
        for file in request.files {
            let relative = try Self.relative(file.path)
            let components = relative.split(separator: "/")
            var current = workdir
            for component in components.dropLast() {
                current += "/" + component
                if madeInWorkdir.insert(current).inserted {
                    task.op(EDGY_OP_MKDIR, path: current, mode: 0o755, describe: "mkdir \(current)")
                    task.op(EDGY_OP_CHOWN, path: current, uid: uid, gid: gid, describe: "chown \(current)")
                }
            }
            let path = workdir + "/" + relative
            task.op(EDGY_OP_WRITE_FILE, path: path, data: file.contents, mode: file.mode & 0o7777 & ~0o6000,
                    uid: uid, gid: gid, describe: "write \(path)")
        }

        // Name service files, so that programs asking who they are get an answer.
        if !made.contains("/etc/passwd") && !policy.mounts.contains(where: { $0.destination == "/etc" }) {
            mkdirs("/etc")
            let home = workdir
            let passwd = "root:x:0:0:root:/root:/bin/sh\njail:x:\(uid):\(gid):jail:\(home):/bin/sh\n"
            let group = "root:x:0:\njail:x:\(gid):\n"
            plan.op(EDGY_OP_WRITE_FILE, path: inRoot("/etc/passwd"), data: Array(passwd.utf8), mode: 0o644, describe: "write /etc/passwd")
            plan.op(EDGY_OP_WRITE_FILE, path: inRoot("/etc/group"), data: Array(group.utf8), mode: 0o644, describe: "write /etc/group")
        }

        // argv with {entry} substituted; the environment is the policy's plus the task's, nothing else.
        let entry = policy.run.entry ?? ""
        let command = (request.command ?? policy.run.command).map { $0.replacing("{entry}", with: entry) }
        guard let program = command.first, !program.isEmpty else {
            throw PlanError("no command: the policy `\(policy.name)` has none and the task gave none")
        }
        task.program = program
        var environment = policy.run.env
        for (key, value) in request.extraEnvironment { environment[key] = value }
        let argvOffsets = command.map { task.string($0) }
        let envOffsets = environment.sorted { $0.key < $1.key }.map { task.string("\($0.key)=\($0.value)") }

        var f = edgy_plan()
        f.unshare_cgroup = 1
        f.user_namespace = policy.identity.userNamespace ? 1 : 0
        f.root = plan.string(root)
        f.root_options = plan.string("size=1m,nr_inodes=4096,mode=0755")
        f.hostname = plan.string(policy.run.hostname)
        f.loopback_up = policy.network.mode == .loopback ? 1 : 0
        f.last_cap = lastCap
        if policy.identity.userNamespace {
            UserNamespaceLimits.add(UserNamespaceLimits.values(for: policy), to: &plan, header: &f)
        }
        plan.plan = f

        var p = edgy_plan()
        p.workdir = task.string(workdir)
        p.exec_path = task.string(program)
        p.search_path = environment["PATH"].map { task.string($0) } ?? 0
        p.argv = task.offsetTable(argvOffsets)
        p.argc = UInt32(argvOffsets.count)
        p.envp = task.offsetTable(envOffsets)
        p.envc = UInt32(envOffsets.count)
        p.uid = uid
        p.gid = gid
        p.last_cap = lastCap
        if !seccomp.isEmpty {
            p.seccomp_filter = task.bytes(seccomp)
            p.seccomp_len = UInt32(seccomp.count / 8)
        }

        let cpu = UInt64(max(1, limits.cpuTimeS.rounded(.up)))
        let rlimits: [(Int32, UInt64, UInt64)] = [
            // SIGXCPU at the limit, SIGKILL a second later if it is ignored.
            (Int32(RLIMIT_CPU.rawValue), cpu, cpu + 1),
            (Int32(RLIMIT_NOFILE.rawValue), UInt64(limits.openFiles), UInt64(limits.openFiles)),
            (Int32(RLIMIT_FSIZE.rawValue), UInt64(limits.fileSizeMib) << 20, UInt64(limits.fileSizeMib) << 20),
            (Int32(RLIMIT_CORE.rawValue), 0, 0),
            // Counted per user, and charged to host root as well (the daemon owns the jail's user
            // namespace): these bound what a jail adds to root's counts.
            (Int32(__RLIMIT_SIGPENDING.rawValue), UInt64(limits.pendingSignals), UInt64(limits.pendingSignals)),
            (Int32(__RLIMIT_MSGQUEUE.rawValue), UInt64(limits.mqueueKib) << 10, UInt64(limits.mqueueKib) << 10),
            (Int32(__RLIMIT_MEMLOCK.rawValue), UInt64(limits.memlockKib) << 10, UInt64(limits.memlockKib) << 10),
        ]
        withUnsafeMutableBytes(of: &p.rlimits) { raw in
            let table = raw.bindMemory(to: edgy_rlimit.self)
            for (i, limit) in rlimits.enumerated() {
                table[i] = edgy_rlimit(resource: limit.0, reserved: 0, soft: limit.1, hard: limit.2)
            }
        }
        p.n_rlimits = UInt32(rlimits.count)
        task.plan = p
        return JailPlans(filesystem: plan, task: task)
    }

    static func absolute(_ path: String, what: String) throws(PlanError) -> String {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw PlanError("\(what) `\(path)` must be an absolute path without `.` or `..`")
        }
        let trimmed = "/" + path.split(separator: "/").joined(separator: "/")
        return trimmed
    }

    static func relative(_ path: String) throws(PlanError) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !path.hasPrefix("/"), !components.isEmpty,
              !components.contains(where: { $0 == ".." || $0 == "." }),
              !path.utf8.contains(0)
        else {
            throw PlanError("file path `\(path)` must be relative, without `.` or `..`")
        }
        return components.joined(separator: "/")
    }
}
