import EdgyNetwork
import EdgyModel
import EdgyPolicy

/// Everything one attempt needs: the effective policy and the task's data.
public struct JailRequest: Sendable {
    public var policy: Policy
    /// The policy's digest, recorded in the report.
    public var policyDigest: String
    public var files: [TaskFile]
    /// Replaces the policy's command (the caller checks that the policy allows it).
    public var command: [String]?
    public var stdin: [UInt8]
    /// Added to the policy's environment (the caller checks the keys against `task_env`).
    public var extraEnvironment: [String: String]
    /// Host directories bound in after the policy's mounts (a dependency layer; its install step's
    /// writable tmpfs). Not the task's to choose: the worker adds them.
    public var extraMounts: [JailMount] = []
    /// The task's subset of the policy's `[outputs] paths`: nil for all of them, empty for none.
    public var outputPatterns: [OutputPattern]?
    /// Bring back every regular file of the working directory (`AttemptReport.workspace`), so the
    /// next step of a multi-step task starts from it.
    public var keepsWorkspace = false
    /// A learning run (`edgy policy learn`): every syscall outside the jail's start-up calls waits
    /// for the supervisor, which records it here and runs it when the policy allows it (else
    /// refuses it with an errno). Every other isolation and limit of the policy holds.
    public var learner: SyscallLearner?
    /// Where the kernel refuses the child a seccomp listener (a filter above the supervisor has
    /// one), its filter's kills trap to the learning tracer, which names the call, instead of
    /// killing by themselves (then only the rate-limited audit log names it). For a learning
    /// run's verification, which must know the call to add it.
    public var tracesKillsWithoutListener = false

    public init(
        policy: Policy, policyDigest: String = "", files: [TaskFile] = [], command: [String]? = nil,
        stdin: [UInt8] = [], extraEnvironment: [String: String] = [:], limitsOverridden: Bool = false
    ) {
        self.policy = policy
        self.limitsOverridden = limitsOverridden
        self.policyDigest = policyDigest
        self.files = files
        self.command = command
        self.stdin = stdin
        self.extraEnvironment = extraEnvironment
    }

    /// Whether the pool should keep jails of this request's shape parked. Not when the task
    /// changed the policy's limits: every distinct override would otherwise be a shape of its
    /// own, and a stream of them would evict the policies' own shapes. Such a request still
    /// takes a parked jail if its shape has one. Extra mounts are part of the shape's filesystem,
    /// mounted when a jail is parked: whoever removes such a directory first calls
    /// `JailSupervisor.forgetParkedJails(mounting:)`.
    var keepsShapeWarm: Bool { !limitsOverridden }

    /// Whether files are collected from the working directory after the workload exits.
    var collectsOutputs: Bool { policy.outputs.enabled && outputPatterns?.isEmpty != true }

    /// Whether the working directory is held open to be read after the workload.
    var readsWorkdir: Bool { policy.outputs.enabled || keepsWorkspace }

    /// Whether the task changed the loaded policy's limits.
    public var limitsOverridden: Bool
}

/// A host directory bound into one jail, nosuid and nodev, read-only unless `writable`.
public struct JailMount: Sendable, Hashable {
    public var source: String
    public var destination: String
    public var writable: Bool

    public init(source: String, destination: String, writable: Bool = false) {
        self.source = source
        self.destination = destination
        self.writable = writable
    }
}

/// Host-level settings of the jail, the same for every policy.
public struct JailHostConfiguration: Sendable, Hashable {
    /// A directory the child mounts its new root on, inside its own mount namespace.
    public var stagingRoot: String
    /// Inside ids `[0, idCount)` map to `[hostIDBase, hostIDBase + idCount)`: an unprivileged
    /// range no real user owns.
    public var hostIDBase: UInt32
    public var idCount: UInt32
    /// Kill the jail if the thread that spawned it dies (so a crashed supervisor leaves no jail).
    public var dieWithSupervisor: Bool
    /// Jails kept cloned ahead of demand per shape (namespaces + cgroup limits), parked at their
    /// gate; 0 (the default) spawns every jail on demand. A pooled start skips clone, id maps,
    /// cgroup mkdir and (v1) the cgroup attach, which blocks ~6–10 ms when starts are spaced out.
    ///
    /// - Important: A pool is visible in the process: parked children, their fds (six each) and
    ///   one thread. `edgyd` should turn it on (2 per shape suits a 2-core host); call
    ///   `JailSupervisor.shutdown()` before exit.
    public var poolSize: Int
    /// How `egress` jails get their network (docs/network.md); nil: egress policies fail at setup.
    public var egress: EgressConfiguration?
    /// The `edgy-forkserver` executable jails are cloned by (`ForkServer`), or nil to clone them in
    /// this process. `edgyd` uses the one installed beside it; a one-shot `edgy run` clones in
    /// process (starting a server would cost more than it saves).
    public var forkServer: String?

    public init(
        stagingRoot: String = "/run/edgy/root", hostIDBase: UInt32 = 1_000_000_000,
        idCount: UInt32 = 65536, dieWithSupervisor: Bool = true, poolSize: Int = 0,
        egress: EgressConfiguration? = nil, forkServer: String? = nil
    ) {
        self.egress = egress
        self.forkServer = forkServer
        self.stagingRoot = stagingRoot
        self.hostIDBase = hostIDBase
        self.idCount = idCount
        self.dieWithSupervisor = dieWithSupervisor
        self.poolSize = poolSize
    }
}
