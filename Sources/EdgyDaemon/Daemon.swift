import EdgyAPI
import EdgyAuth
import EdgyCgroup
import EdgyJail
import EdgyLayers
import EdgyNetwork
import EdgyPolicy
import EdgyQueue
import EdgyStore
import EdgyWebhooks
import EdgyStorePostgres
import EdgyStoreSQLite
import Foundation
import Glibc
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `edgyd` assembled: host checks, store, policies, jail supervisor, worker pool, janitor and the
/// HTTP API in one `ServiceGroup` with graceful shutdown on SIGTERM and SIGINT.
public struct Daemon: Sendable {
    public let configuration: DaemonConfiguration
    let logger: Logger
    /// The Prometheus text of this process's metrics, for `GET /metrics`.
    let metrics: (@Sendable () -> String)?

    public init(configuration: DaemonConfiguration, logger: Logger, metrics: (@Sendable () -> String)? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
    }

    /// Runs until SIGTERM/SIGINT. Throws when the host or the configuration cannot support a jail
    /// service, with a message saying what is missing.
    public func run() async throws {
        try configuration.validate()
        try HostCheck.run()
        let (host, port) = try configuration.listenAddress()

        try Self.makeDirectory(configuration.stateDirectory, mode: 0o700)
        try StateDirectory.secure(configuration.stateDirectory)
        let (catalog, diagnostics) = PolicyCatalog.load(directory: configuration.policyDirectory)
        for diagnostic in diagnostics {
            if diagnostic.severity == .error {
                logger.error("policy error", metadata: ["diagnostic": "\(diagnostic)"])
            } else {
                logger.warning("policy warning", metadata: ["diagnostic": "\(diagnostic)"])
            }
        }
        guard !catalog.all.isEmpty else {
            throw ConfigurationError("no usable policy in \(configuration.policyDirectory)")
        }

        // Every limit a policy sets must be enforceable on this host; none is silently dropped.
        let cgroupHost = try CgroupHost.detect()
        for loaded in catalog.all {
            try cgroupHost.check(requiring: CgroupLimits(memoryBytes: UInt64(loaded.policy.limits.memoryMib) << 20, pidsMax: loaded.policy.limits.pids))
        }
        // Kept groups: as many as jails can be parked and running at once, and some.
        let cgroups = try CgroupManager(
            host: cgroupHost, parentName: configuration.cgroupParent, spareGroups: 2 * (configuration.jailPool + configuration.workers) + 8)
        let leftovers = cgroups.reapLeftovers()
        if leftovers > 0 {
            logger.warning("killed and removed jail cgroups left by a previous run", metadata: ["groups": "\(leftovers)"])
        }
        // Egress: leftovers of a killed edgyd are removed here; without nftables or veth (or with
        // egress off), egress policies are refused with the reason instead of failing each task.
        let egress = try configuration.egressConfiguration()
        let forkServer = configuration.forkServerExecutable()
        if let forkServer {
            guard access(forkServer, X_OK) == 0 else {
                throw ConfigurationError("fork_server: \(forkServer) is not an executable file")
            }
        } else if configuration.forkServer == "auto" {
            logger.warning("edgy-forkserver is not installed beside edgyd: jails are cloned by edgyd itself, which is slower under load (fork_server = \"off\" silences this)")
        }
        let supervisor = try JailSupervisor(
            host: JailHostConfiguration(poolSize: configuration.jailPool, egress: egress, forkServer: forkServer),
            cgroups: cgroups)
        if let server = supervisor.forkServer {
            if server.waitUntilRunning() {
                logger.info("jails are cloned by the fork server", metadata: ["executable": "\(server.executable)", "pid": "\(server.pid)"])
            } else if server.isIncompatible {
                logger.error("the fork server is from another build; jails are cloned by edgyd", metadata: ["reason": "\(server.lastError ?? "unknown")"])
            } else {
                logger.error("the fork server did not start; jails are cloned by edgyd until it does", metadata: ["reason": "\(server.lastError ?? "unknown")"])
            }
        }
        if let left = supervisor.egressHost?.leftovers, left.table || !left.interfaces.isEmpty {
            logger.warning("removed egress rules left by a previous run", metadata: [
                "table": "\(left.table)", "interfaces": "\(left.interfaces.joined(separator: ","))",
            ])
        }
        if let why = supervisor.egressUnavailable {
            let reason = egress == nil ? "egress = \"off\" in edgyd's configuration" : why
            let refused = catalog.refuse { $0.network.mode == .egress ? "it needs network egress, which this host cannot give: \(reason)" : nil }
            for diagnostic in refused { logger.error("policy refused", metadata: ["diagnostic": "\(diagnostic)"]) }
        }
        // Dependency layers need egress for their install step; without it, tasks that declare
        // dependencies end `dependency_error` saying so.
        var taskDependencies: TaskDependencies?
        let layerDirectory = configuration.stateDirectory + "/layers"
        if supervisor.egressUnavailable != nil {
            logger.warning("dependencies are not installed on this host: the install step needs egress")
        } else if let why = LayerCache.unreachable(layerDirectory + "/key") {
            logger.error("dependencies are not installed on this host", metadata: ["reason": "\(why)"])
        } else {
            let cache = try LayerCache(
                directory: layerDirectory, capBytes: UInt64(configuration.dependencyCacheMib) << 20, logger: logger
            ) { path in
                supervisor.forgetParkedJails(mounting: path)
            }
            let installer = LayerInstaller(
                cache: cache, registries: try configuration.registries(), hostIDBase: supervisor.host.hostIDBase, logger: logger
            ) { request in
                await supervisor.run(request, onOutput: nil)
            }
            taskDependencies = TaskDependencies(cache: cache, installer: installer)
        }

        let notifier = TaskNotifier()
        if configuration.store == "sqlite" {
            let store = try SQLiteTaskStore(path: configuration.stateDirectory + "/edgy.sqlite")
            // SQLite creates the database (and its -wal/-shm) with the process umask; later ones copy the database's mode.
            try StateDirectory.tightenFiles(in: configuration.stateDirectory)
            // WAL checkpoints run beside the services, off the write path, and stop after them.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { [logger] in
                    do {
                        try await store.checkpointContinuously()
                    } catch {
                        // Commits then checkpoint as SQLite does by default: slower, never unsafe.
                        logger.warning("WAL checkpoints run in commits", metadata: ["error": "\(error)"])
                    }
                }
                try await serve(store: store, tokens: store, workers: LocalWorkerRegistry(), notifier: notifier, supervisor: supervisor, catalog: catalog, cgroupVersion: cgroupHost.version, host: host, port: port,
                    dependencies: taskDependencies)
                group.cancelAll()
            }
            // Closing waits until no pooled reader is in use, and an async read hands its reader
            // back only when its task resumes, on the event loop: so the wait must not hold the loop.
            await withCheckedContinuation { (closed: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    try? store.close()
                    closed.resume()
                }
            }
        } else {
            // The shared store's connection pool and LISTEN loop run beside the services and stop after them.
            let store = try PostgresTaskStore(url: configuration.store, notifier: notifier, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.run() }
                try await store.migrate()
                // Layers built here go to the shared store, and layers other hosts built come from it.
                let shared = taskDependencies.map { TaskDependencies(cache: $0.cache, installer: $0.installer, shared: store) }
                try await serve(store: store, tokens: store, workers: store, notifier: notifier, supervisor: supervisor, catalog: catalog, cgroupVersion: cgroupHost.version, host: host, port: port,
                dependencies: shared)
                group.cancelAll()
            }
        }
        supervisor.shutdown()
        cgroups.removeSpareGroups()
        logger.notice("edgyd stopped")
    }

    /// Runs the services on an open store until graceful shutdown.
    func serve(
        store: any TaskStore, tokens: any TokenStore, workers registry: any WorkerRegistry, notifier: TaskNotifier,
        supervisor: JailSupervisor, catalog: PolicyCatalog, cgroupVersion: CgroupVersion, host: String, port: Int,
        dependencies taskDependencies: TaskDependencies?
    ) async throws {
        try await AdminTokenBootstrap.ensure(in: configuration.stateDirectory, tokens: tokens, logger: logger)
        let ready = ReadyFlag()
        let workerID = configuration.workerID ?? Self.defaultWorkerID(stateDirectory: configuration.stateDirectory)
        let heartbeat = WorkerHeartbeat(
            registry: registry,
            worker: WorkerInfo(
                id: workerID, host: Self.hostName(), slots: configuration.workers, kernel: Self.kernelRelease(),
                cgroupVersion: cgroupVersion == .v1 ? 1 : 2, startedAt: Date()),
            logger: logger)
        try await heartbeat.register()
        var poolConfiguration = WorkerPoolConfiguration(workerID: workerID, workers: configuration.workers)
        poolConfiguration.shutdownGracePeriod = .milliseconds(Int(configuration.shutdownGraceSeconds * 1000))
        let lease = Duration.milliseconds(Int(configuration.leaseSeconds * 1000))
        poolConfiguration.leaseDuration = lease
        poolConfiguration.heartbeatInterval = lease / 3
        poolConfiguration.maxRunningPerTenant = configuration.tenantMaxRunning
        let pool = WorkerPool(
            store: store, runner: supervisor, policies: catalog, notifier: notifier,
            configuration: poolConfiguration, logger: logger, dependencies: taskDependencies)
        let janitor = Janitor(
            store: store, notifier: notifier, interval: min(.seconds(5), lease / 2),
            retention: .seconds(configuration.retentionHours * 3600), logger: logger)

        let audit = try AuditFile.open(in: configuration.stateDirectory)
        // Requests look their token up in memory for up to a second; a revocation through this
        // host's API is seen at once, one through another host within that second.
        var dependencies = APIDependencies(
            store: store, tokens: CachingTokenStore(tokens), policies: catalog, notifier: notifier, logger: logger,
            audit: audit, readiness: { ready.isSet }, workers: registry, metrics: metrics, layers: taskDependencies?.cache)
        dependencies.policyLearning = HostPolicyLearning(supervisor: supervisor)
        dependencies.dispatcher = pool
        var apiConfiguration = APIConfiguration(maxQueued: configuration.queueCapacity, maxQueuedPerTenant: configuration.tenantMaxQueued)
        apiConfiguration.tenantQuotas = configuration.tenantQuotas
        apiConfiguration.authFailureLimit = configuration.authFailureLimit
        apiConfiguration.maxBlobBytes = configuration.maxBlobMib << 20
        apiConfiguration.maxBufferedRequestBytes = configuration.maxBufferedRequestMib << 20
        apiConfiguration.maxBufferedRequestBytesPerTenant = (configuration.maxBufferedRequestMib << 20) / 4
        apiConfiguration.callbackAllowlist = try configuration.callbackAllowlist()
        apiConfiguration.webhooksEnabled = configuration.webhooks == "on"
        let router = buildRouter(dependencies, apiConfiguration)
        let logger = self.logger
        let maxConnections = Self.connectionsThatFit(configuration.maxConnections, logger: logger)
        let perAddress = ConnectionsPerAddress(limit: configuration.maxConnectionsPerAddress)
        var appConfiguration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "edgyd")
        appConfiguration.availableConnectionsDelegate = MaximumAvailableConnections(maxConnections, logger: logger)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(
                additionalChannelHandlers: [perAddress.handler()],
                idleTimeout: .milliseconds(Int64(configuration.idleTimeoutSeconds * 1000)))),
            configuration: appConfiguration,
            onServerRunning: { channel in
                ready.set()
                logger.notice(
                    "edgyd is ready",
                    metadata: [
                        "listen": "\(channel.localAddress?.description ?? "\(host):\(port)")",
                        "workers": "\(configuration.workers)", "api_threads": "\(configuration.apiThreads)", "cgroups": "\(cgroupVersion.rawValue)", "worker_id": "\(workerID)",
                        "policies": "\(catalog.all.map(\.policy.name).joined(separator: ","))",
                    ])
            },
            logger: logger)

        let reloader = PolicyReloader(catalog: catalog, audit: audit, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: janitor), .init(service: heartbeat), .init(service: reloader), .init(service: pool), .init(service: app),
        ]
        if configuration.webhooks == "on", let deliveries = store as? any TaskStore & DeliveryStore {
            var webhooks = WebhookConfiguration()
            webhooks.allow = try configuration.callbackAllowlist()
            webhooks.maxAttempts = configuration.webhookMaxAttempts
            webhooks.retryBase = .milliseconds(configuration.webhookRetryBaseMs)
            services.append(.init(service: WebhookDeliverer(store: deliveries, configuration: webhooks, logger: logger, encode: { try taskJSON($0) })))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// Raises the soft limit of open files to the hard one and returns how many of them
    /// connections may take: `wanted`, or fewer when the limit would leave jails and the store
    /// less than `reservedDescriptors` (then with a warning). Past the limit, `accept` fails
    /// and so do a jail's pipes; below it, extra connections wait in the listen backlog.
    static func connectionsThatFit(_ wanted: Int, logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return wanted }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let available = Int(clamping: limit.rlim_cur) - reservedDescriptors
        guard available < wanted else { return wanted }
        let fitting = max(16, available)
        logger.warning(
            "max_connections lowered to fit the open-file limit",
            metadata: ["max_connections": "\(wanted)", "now": "\(fitting)", "open_file_limit": "\(limit.rlim_cur)",
                       "fix": "raise the hard limit (LimitNOFILE= in the systemd unit, ulimit -Hn)"])
        return fitting
    }

    /// Descriptors kept for everything but client connections: the store, jails' pipes, pidfds
    /// and cgroup files, the pool's parked jails, the fork server's socket.
    static let reservedDescriptors = 1024

    static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func kernelRelease() -> String {
        (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
    }

    /// Host name plus a hash of the state directory: stable across restarts (so a restarted daemon
    /// reclaims its own leases at once) and distinct between daemons on one host.
    static func defaultWorkerID(stateDirectory: String) -> String {
        let host = hostName()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in stateDirectory.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "\(host)-\(String(hash, radix: 16).prefix(8))"
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, current == path || current + "/" == path ? mode : 0o755) != 0 && errno != EEXIST {
                throw ConfigurationError("cannot create \(current): errno \(errno)")
            }
        }
    }
}

/// Set once the HTTP server listens: `/readyz` answers 200 from then on.
final class ReadyFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Reloads policies on SIGHUP; an attempt keeps the version it started with.
struct PolicyReloader: Service {
    let catalog: PolicyCatalog
    let audit: AuditLog
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                let diagnostics = catalog.reload()
                let errors = diagnostics.filter { $0.severity == .error }.count
                _ = audit.record(AuditEntry(
                    action: "policy.reload", result: errors == 0 ? "ok" : "error", status: 0, client: "SIGHUP",
                    detail: "\(catalog.all.count) policies, \(errors) errors"))
                logger.notice("policies reloaded", metadata: [
                    "policies": "\(catalog.all.map(\.policy.name).joined(separator: ","))",
                    "errors": "\(diagnostics.filter { $0.severity == .error }.map(\.description))",
                ])
            }
        }
    }
}

/// What the host must offer before a jail service can promise anything.
enum HostCheck {
    static func run() throws {
        guard geteuid() == 0 else {
            throw ConfigurationError("edgyd must run as root: it creates namespaces and cgroups for its jails")
        }
        for (path, what) in [
            ("/proc/self/ns/user", "user namespaces"), ("/proc/self/ns/pid", "PID namespaces"),
            ("/proc/self/ns/net", "network namespaces"), ("/proc/self/ns/cgroup", "cgroup namespaces"),
        ] where access(path, F_OK) != 0 {
            throw ConfigurationError("this kernel lacks \(what) (\(path) is missing)")
        }
        if let text = try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8),
           Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) == 0 {
            throw ConfigurationError("user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)")
        }
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8), status.contains("\nSeccomp:") else {
            throw ConfigurationError("this kernel lacks seccomp (no Seccomp line in /proc/self/status)")
        }
    }
}

/// Keeps this daemon's entry in the worker registry fresh, so `GET /v1/workers` shows who is alive.
struct WorkerHeartbeat: Service {
    let registry: any WorkerRegistry
    let worker: WorkerInfo
    let logger: Logger
    var interval: Duration = .seconds(5)

    func register() async throws {
        try await registry.registerWorker(worker)
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            do {
                if try await !registry.heartbeatWorker(id: worker.id, now: Date()) {
                    try await register()
                }
            } catch {
                logger.warning("worker heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

extension LayerCache: LayerDirectory {}
