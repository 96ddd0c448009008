/// A jail's whole contract: what it runs, what it may touch, and how long and how much.
///
/// Values here are the *effective* policy: `extends` has been resolved and every default filled
/// in. Units are in the property names, as in the TOML keys.
public struct Policy: Sendable, Hashable, Codable {
    /// The policy's name: its file name without `.toml`.
    public var name: String
    public var description: String
    /// The policy this one was derived from, for display; already applied.
    public var extends: String?
    public var run: Run
    public var limits: Limits
    /// Read-only bind mounts from the host.
    public var mounts: [Mount]
    /// Writable tmpfs mounts besides `/tmp` and the working directory.
    public var tmpfs: [TmpfsMount]
    public var network: Network
    public var identity: Identity
    public var seccomp: Seccomp
    public var retry: Retry
    public var access: Access
    /// `[dependencies]`: how tasks under this policy declare packages, and how they are installed.
    public var dependencies: Dependencies
    /// `[outputs]`: the files collected from the working directory after the workload exits.
    public var outputs: Outputs

    public init(
        name: String,
        description: String = "",
        extends: String? = nil,
        run: Run = Run(),
        limits: Limits = Limits(),
        mounts: [Mount] = [],
        tmpfs: [TmpfsMount] = [],
        network: Network = Network(),
        identity: Identity = Identity(),
        seccomp: Seccomp = Seccomp(),
        retry: Retry = Retry(),
        access: Access = Access(),
        dependencies: Dependencies = Dependencies(),
        outputs: Outputs = Outputs()
    ) {
        self.name = name
        self.description = description
        self.extends = extends
        self.run = run
        self.limits = limits
        self.mounts = mounts
        self.tmpfs = tmpfs
        self.network = network
        self.identity = identity
        self.seccomp = seccomp
        self.retry = retry
        self.access = access
        self.dependencies = dependencies
        self.outputs = outputs
    }

    /// `[run]`: the command and the environment it starts in.
    public struct Run: Sendable, Hashable, Codable {
        /// argv; `{entry}` is replaced by the entry file's path. Empty means the task must give a command.
        public var command: [String]
        /// The file that receives a task's `input`, relative to `workdir`.
        public var entry: String?
        /// Absolute path inside the jail; a size-capped tmpfs owned by the jail's uid.
        public var workdir: String
        /// The jail's whole environment: nothing is inherited from the daemon.
        public var env: [String: String]
        /// Environment keys a task may add or override.
        public var taskEnv: [String]
        /// Whether a task may replace `command` with its own.
        public var allowCommandOverride: Bool
        public var hostname: String

        public init(
            command: [String] = [],
            entry: String? = nil,
            workdir: String = "/work",
            env: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin"],
            taskEnv: [String] = [],
            allowCommandOverride: Bool = false,
            hostname: String = "edgy"
        ) {
            self.command = command
            self.entry = entry
            self.workdir = workdir
            self.env = env
            self.taskEnv = taskEnv
            self.allowCommandOverride = allowCommandOverride
            self.hostname = hostname
        }
    }

    /// What happens when a workload writes more than its stdout/stderr cap.
    public enum OutputOverflow: String, Sendable, Hashable, Codable, CaseIterable {
        /// Keep the first bytes, count the rest, let the workload run on.
        case truncate
        /// Kill the jail; the attempt ends `output_limit`.
        case kill
    }

    /// `[limits]`. A task may tighten any of these, never loosen them.
    public struct Limits: Sendable, Hashable, Codable {
        public var wallTimeS: Double
        public var cpuTimeS: Double
        public var memoryMib: Int
        public var pids: Int
        public var openFiles: Int
        public var fileSizeMib: Int
        public var workdirMib: Int
        public var tmpMib: Int
        public var stdoutKib: Int
        public var stderrKib: Int
        public var outputOverflow: OutputOverflow
        /// `RLIMIT_SIGPENDING`: queued signals, charged to host root's count too (see docs).
        public var pendingSignals: Int
        /// `RLIMIT_MSGQUEUE`: bytes of POSIX message queues.
        public var mqueueKib: Int
        /// `RLIMIT_MEMLOCK`: locked memory.
        public var memlockKib: Int

        public init(
            wallTimeS: Double = 10,
            cpuTimeS: Double = 5,
            memoryMib: Int = 256,
            pids: Int = 64,
            openFiles: Int = 256,
            fileSizeMib: Int = 16,
            workdirMib: Int = 64,
            tmpMib: Int = 64,
            stdoutKib: Int = 1024,
            stderrKib: Int = 1024,
            outputOverflow: OutputOverflow = .truncate,
            pendingSignals: Int = 64,
            mqueueKib: Int = 64,
            memlockKib: Int = 64
        ) {
            self.wallTimeS = wallTimeS
            self.cpuTimeS = cpuTimeS
            self.memoryMib = memoryMib
            self.pids = pids
            self.openFiles = openFiles
            self.fileSizeMib = fileSizeMib
            self.workdirMib = workdirMib
            self.tmpMib = tmpMib
            self.stdoutKib = stdoutKib
            self.stderrKib = stderrKib
            self.outputOverflow = outputOverflow
            self.pendingSignals = pendingSignals
            self.mqueueKib = mqueueKib
            self.memlockKib = memlockKib
        }
    }

    /// `[[mounts]]`: a read-only, nosuid, nodev bind of a host path.
    public struct Mount: Sendable, Hashable, Codable {
        public var source: String
        /// Where it appears inside the jail; defaults to `source`.
        public var destination: String
        /// A missing source is an error when true, skipped when false.
        public var required: Bool

        public init(source: String, destination: String? = nil, required: Bool = true) {
            self.source = source
            self.destination = destination ?? source
            self.required = required
        }
    }

    /// `[[tmpfs]]`: a writable, size-capped tmpfs owned by the jail's uid.
    public struct TmpfsMount: Sendable, Hashable, Codable {
        public var destination: String
        public var sizeMib: Int

        public init(destination: String, sizeMib: Int = 16) {
            self.destination = destination
            self.sizeMib = sizeMib
        }
    }

    public enum NetworkMode: String, Sendable, Hashable, Codable, CaseIterable {
        /// A network namespace with no interface up at all.
        case none
        /// A network namespace with only `lo`, up.
        case loopback
        /// `lo`, and a veth pair to the host through which only `allow`'s destinations are
        /// reached; names resolve through edgyd's resolver (docs/network.md).
        case egress
    }

    /// How a task's packages are written down.
    public enum ManifestFormat: String, Sendable, Hashable, Codable, CaseIterable {
        /// The policy takes no dependencies.
        case none
        /// pip's `requirements.txt`: one requirement per line, no options.
        case requirements
        /// npm's `package.json` (with an optional `package-lock.json`).
        case packageJSON = "package_json"
    }

    /// `[dependencies]`: a task's packages are installed once, by `install` in a jail of their own
    /// that sees only the manifest and reaches only the registry, into a layer that later runs
    /// mount read-only at `mount`.
    public struct Dependencies: Sendable, Hashable, Codable {
        public var format: ManifestFormat
        /// The manifest's path in the task's files (e.g. `requirements.txt`).
        public var manifest: String
        /// An optional lockfile beside it (e.g. `package-lock.json`); empty for none.
        public var lockfile: String
        /// The install command: `{manifest}`, `{lockfile}`, `{layer}` and `{registry}` are replaced.
        public var install: [String]
        /// The name of the registry in edgyd's `dependency_registries` that `{registry}` stands for.
        public var registry: String
        /// The install step's egress allowlist (`[network] allow` grammar): the registry hosts.
        public var allow: [String]
        /// Where the layer appears, read-only, in the install step (writable) and in runs.
        public var mount: String
        /// Added to the run's environment, so the runtime finds the layer (`PYTHONPATH`, `NODE_PATH`).
        public var env: [String: String]
        /// The runtime whose version (its executable's bytes) is part of a layer's key.
        public var runtime: String
        /// The most a layer may hold; the install step writes into a tmpfs of this size.
        public var layerMib: Int
        /// The install step's limits: the policy's `[limits]`, tightened by these.
        public var limits: LimitOverrides

        public init(
            format: ManifestFormat = .none, manifest: String = "", lockfile: String = "", install: [String] = [],
            registry: String = "", allow: [String] = [], mount: String = "/deps", env: [String: String] = [:],
            runtime: String = "", layerMib: Int = 256, limits: LimitOverrides = LimitOverrides()
        ) {
            self.format = format
            self.manifest = manifest
            self.lockfile = lockfile
            self.install = install
            self.registry = registry
            self.allow = allow
            self.mount = mount
            self.env = env
            self.runtime = runtime
            self.layerMib = layerMib
            self.limits = limits
        }

        /// Whether tasks under the policy may declare dependencies.
        public var enabled: Bool { format != .none }
    }

    /// `[outputs]`: after the workload exits, regular files of the working directory that match
    /// `paths` are collected (never through a symlink, never a special file) into the blob store,
    /// within caps on their count, their bytes and the time spent.
    public struct Outputs: Sendable, Hashable, Codable {
        /// `OutputPattern`s; empty: nothing is collected.
        public var paths: [String]
        public var maxFiles: Int
        public var maxMib: Int
        /// The most the walk and the reads may take, in milliseconds.
        public var timeMs: Int

        public init(paths: [String] = [], maxFiles: Int = 100, maxMib: Int = 16, timeMs: Int = 2000) {
            self.paths = paths
            self.maxFiles = maxFiles
            self.maxMib = maxMib
            self.timeMs = timeMs
        }

        public var enabled: Bool { !paths.isEmpty }

        /// The parsed patterns (checked when the policy was loaded, so none is dropped here).
        public var patterns: [OutputPattern] { paths.compactMap { try? OutputPattern($0) } }
    }

    /// `[network]`.
    public struct Network: Sendable, Hashable, Codable {
        public var mode: NetworkMode
        /// With `egress`: destinations as written (`EgressRule` grammar), checked at load.
        public var allow: [String]
        public init(mode: NetworkMode = .none, allow: [String] = []) {
            self.mode = mode
            self.allow = allow
        }
    }

    /// `[identity]`: the ids the workload runs as, inside the jail.
    public struct Identity: Sendable, Hashable, Codable {
        public var uid: UInt32
        public var gid: UInt32
        /// With a user namespace, inside ids map to an unprivileged host range.
        public var userNamespace: Bool

        public init(uid: UInt32 = 65534, gid: UInt32 = 65534, userNamespace: Bool = true) {
            self.uid = uid
            self.gid = gid
            self.userNamespace = userNamespace
        }
    }

    /// What the filter does with a syscall it does not allow.
    public enum SeccompAction: Sendable, Hashable, Codable, CustomStringConvertible {
        case killProcess
        /// The syscall fails with this errno (number and name, e.g. 1 / "EPERM").
        case errno(Int32, String)
        /// Allowed, and logged by the kernel's audit.
        case log

        public var description: String {
            switch self {
            case .killProcess: "kill_process"
            case .errno(_, let name): "errno:\(name)"
            case .log: "log"
            }
        }
    }

    /// `[seccomp]`: an allow list of syscalls and groups; everything else takes `defaultAction`.
    public struct Seccomp: Sendable, Hashable, Codable {
        public var defaultAction: SeccompAction
        /// Syscall names and `@group` names.
        public var allow: [String]
        /// Removed from `allow`; they take `defaultAction`.
        public var deny: [String]
        /// `socket(2)` is allowed only for these address families (`unix`, `inet`, `inet6`, `netlink`).
        public var socketFamilies: [String]
        /// `ioctl(2)` requests that are always refused (by name, e.g. `TIOCSTI`).
        public var ioctlDeny: [String]
        /// Whether `clone(2)` may create namespaces. Off by default: a jail cannot nest jails.
        public var allowNamespaceClone: Bool

        public init(
            defaultAction: SeccompAction = .killProcess,
            allow: [String] = ["@default"],
            deny: [String] = [],
            socketFamilies: [String] = ["unix", "inet", "inet6"],
            ioctlDeny: [String] = ["TIOCSTI", "TIOCLINUX"],
            allowNamespaceClone: Bool = false
        ) {
            self.defaultAction = defaultAction
            self.allow = allow
            self.deny = deny
            self.socketFamilies = socketFamilies
            self.ioctlDeny = ioctlDeny
            self.allowNamespaceClone = allowNamespaceClone
        }

        /// A few fields, not every name: tables are looked up by hash on every attempt (the
        /// compiled-program cache), and hashing hundreds of names cost about 15 µs there. `==`
        /// still compares the whole table.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(defaultAction)
            hasher.combine(allowNamespaceClone)
            hasher.combine(allow.count)
            hasher.combine(allow.first)
            hasher.combine(allow.last)
            hasher.combine(deny.count)
            hasher.combine(socketFamilies)
            hasher.combine(ioctlDeny.count)
        }
    }

    /// `[retry]`.
    public struct Retry: Sendable, Hashable, Codable {
        /// `setup_error` and `lost` attempts are always retried up to this.
        public var maxAttempts: Int
        /// Workload outcomes that also retry, e.g. `wall_timeout`.
        public var retryOn: [String]

        public init(maxAttempts: Int = 3, retryOn: [String] = []) {
            self.maxAttempts = maxAttempts
            self.retryOn = retryOn
        }
    }

    /// `[access]`.
    public struct Access: Sendable, Hashable, Codable {
        /// Roles that may run tasks under this policy.
        public var roles: [String]
        public init(roles: [String] = ["submitter"]) { self.roles = roles }
    }
}
