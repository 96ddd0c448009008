import CEdgyJail
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgySeccomp
import EdgySystem
import Glibc

/// A request that cannot become a plan: bad file paths, no command. Reported as `setup_error`
/// at stage "plan"; nothing was spawned.
public struct PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The header of a plan blob: `edgy_fs_plan` or `edgy_task_plan`, which both start with
/// `EDGY_PLAN_BLOB_HEADER` (the blob's length and its op table).
protocol PlanHeader {
    init()
    var blob_len: UInt64 { get set }
    var ops: UInt64 { get set }
    var n_ops: UInt32 { get set }
}

extension edgy_fs_plan: PlanHeader, FilterHeader {}
extension edgy_task_plan: PlanHeader, FilterHeader {}

/// A plan header that can carry a seccomp filter: both do, the filesystem plan's when the jail
/// loads it while parked (`ParkedFilter`), the task plan's otherwise.
protocol FilterHeader {
    var seccomp_filter: UInt64 { get set }
    var seccomp_len: UInt32 { get set }
    var seccomp_fallback: UInt64 { get set }
    var seccomp_fallback_len: UInt32 { get set }
}

/// The filesystem plan: every mount of the policy, built by the jail between its two gates.
typealias FilesystemPlan = JailPlan<edgy_fs_plan>
/// The task plan: files, command, ids, rlimits and seccomp, written right before the second gate.
typealias TaskPlan = JailPlan<edgy_task_plan>

/// The flat, position-independent form of a plan that the C child reads (prepare in the parent,
/// apply in the child). One blob: the header, then strings, file bodies, the op table, argv/envp
/// tables and the seccomp program, referred to by their offset from the start of the blob.
struct JailPlan<Header: PlanHeader> {
    /// Starts with room for the header, which `blob()` fills in; offset 0 means "absent".
    var arena = [UInt8](repeating: 0, count: MemoryLayout<Header>.stride)
    var ops: [edgy_fs_op] = []
    /// What each op does, for error messages: "mount /usr", "write /work/main.py".
    var opDescriptions: [String] = []
    var header = Header()
    /// argv[0] as given, for "execve X: ENOENT" (task plans).
    var program: String = ""
    /// A learning run's task plan: where the child gets no seccomp listener, the supervisor traces
    /// it instead (`edgy_tracer_start`).
    var tracesWithoutListener = false

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

    /// `filter`, loaded with a listener, and `fallback`, loaded instead where the kernel refuses
    /// the child a listener (a filter above the supervisor has the one a task may have), into
    /// the blob and `header`.
    mutating func addFilter<H: FilterHeader>(_ filter: SeccompProgram, fallback: SeccompProgram, to header: inout H) {
        header.seccomp_filter = bytes(filter.bytes)
        header.seccomp_len = UInt32(filter.instructionCount)
        header.seccomp_fallback = bytes(fallback.bytes)
        header.seccomp_fallback_len = UInt32(fallback.instructionCount)
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
        var header = self.header
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

/// Plans are plain bytes and values, kept between attempts (`FilesystemPlanCache`).
extension JailPlan: Sendable where Header: Sendable {}

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
    let filesystem: [UInt8]
    /// `filesystem`'s hash (`BuiltFilesystem.blobHash`).
    private let filesystemHash: Int
    /// What each of its ops does, for error messages.
    var filesystemOps: [String]
    /// `egress` policies: the allow list its veth pair's rules are made from; nil without egress.
    var egressRules: [EgressRule]?
    /// Host directories the worker binds in (dependency layers), mounted when a jail is parked:
    /// `JailPool.forget(mounting:)` finds the parked jails that hold one. (In `filesystem` too.)
    var extraMountSources: [String] = []
    /// Policies with `[outputs]`: the working directory (inside the jail), which the parent opens
    /// while the jail is parked so that it can collect files after the workload is gone.
    var outputsWorkdir: String?
    /// The filesystem plan loads the seccomp filter while parked (`ParkedFilter`). (In `filesystem` too.)
    var filterWhileParked: Bool

    init(policy: Policy, cgroups: Bool, filesystem: BuiltFilesystem) {
        self.filesystem = filesystem.blob
        self.filesystemHash = filesystem.blobHash
        self.filterWhileParked = filesystem.plan.header.seccomp_len > 0
        self.filesystemOps = filesystem.plan.opDescriptions
        var namespaces = EDGY_CLONE_NEWNS | EDGY_CLONE_NEWPID | EDGY_CLONE_NEWNET | EDGY_CLONE_NEWIPC | EDGY_CLONE_NEWUTS
        if policy.identity.userNamespace { namespaces |= EDGY_CLONE_NEWUSER }
        self.namespaces = namespaces
        self.userNamespace = policy.identity.userNamespace
        self.memoryBytes = cgroups ? UInt64(policy.limits.memoryMib) << 20 : nil
        self.pidsMax = cgroups ? policy.limits.pids : nil
        self.egressRules = policy.network.mode == .egress ? policy.network.rules : nil
    }

    /// Hashes the filesystem blob's hash, taken once when the plan was built: the synthesized
    /// conformance combined its ~4 KB one byte at a time on every pool lookup, and hashing it in
    /// bulk each time still showed in profiles. Equality still compares it whole.
    func hash(into hasher: inout Hasher) {
        hasher.combine(namespaces)
        hasher.combine(userNamespace)
        hasher.combine(memoryBytes)
        hasher.combine(pidsMax)
        hasher.combine(egressRules)
        hasher.combine(outputsWorkdir)
        hasher.combine(filesystemHash)
    }

    static func == (a: JailShape, b: JailShape) -> Bool {
        a.namespaces == b.namespaces && a.userNamespace == b.userNamespace && a.memoryBytes == b.memoryBytes
            && a.pidsMax == b.pidsMax && a.egressRules == b.egressRules && a.outputsWorkdir == b.outputsWorkdir && a.filesystem == b.filesystem
    }

    /// The C shape for a clone with these stdio fds and (v2) cgroup fd. Its `fs` is left nil:
    /// point it into `filesystem` for the duration of the clone.
    func cShape(host: JailHostConfiguration, stdio: (Int32, Int32, Int32), cgroupFD: Int32?, egress: EgressSlot?) -> edgy_shape {
        var s = edgy_shape()
        if let egress {
            s.egress_address = egress.jailAddress.bigEndian
            s.egress_gateway = egress.hostAddress.bigEndian
            s.egress_prefix = Int32(EgressSlot.prefixLength)
        }
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
    var filesystem: BuiltFilesystem
    var task: TaskPlan
}

