import EdgyJail
import EdgyLayers
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgyPostgresTestSupport
import EdgyStorePostgres
import EdgyQueue
import EdgyStore
import EdgyTestSupport
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Testing

/// Dependencies end to end with real jails: the shipped `python` policy, pip in its install jail
/// against a package index the test serves in a namespace of its own, layers on disk, the worker
/// pool mounting them. One at a time: each test builds and removes its own egress table and index.
@Suite(.tags(.root), .requiresRoot, .serialized, .timeLimit(.minutes(5)))
struct DependencyLayerTests {
    static let egress = EgressConfiguration(
        range: IPv4Network.parse("10.241.0.0/24")!, table: "edgydeps", interfacePrefix: "edgyd", resolverPort: 5397, hosts: [:])

    /// Imports the package, then says what the jail let it do.
    static let program = """
        import os, socket, sys
        import edgytoy
        print(edgytoy.hello())
        for what, act in [("connect", lambda: socket.create_connection(("203.0.113.10", 8080), timeout=2)),
                          ("write", lambda: open("/deps/edgytoy/__init__.py", "w")),
                          ("remove", lambda: os.remove("/deps/edgytoy/__init__.py")),
                          ("create", lambda: open("/deps/new.py", "w"))]:
            try:
                act()
                print(what, "allowed")
            except OSError as e:
                print(what, "refused", type(e).__name__)
        """

    final class Environment: Sendable {
        let supervisor: JailSupervisor
        let index: PackageIndex
        let layers: String
        let policy: LoadedPolicy
        let node: LoadedPolicy

        init(supervisor: JailSupervisor, index: PackageIndex, layers: String, policy: LoadedPolicy, node: LoadedPolicy) {
            self.supervisor = supervisor
            self.index = index
            self.layers = layers
            self.policy = policy
            self.node = node
        }

        func dependencies(
            capBytes: UInt64 = 1 << 30, registry: String? = nil, directory: String? = nil, shared: (any SharedLayerStore)? = nil
        ) throws -> TaskDependencies {
            let cache = try LayerCache(directory: directory ?? layers, capBytes: capBytes, logger: Logger(label: "test")) { [supervisor] path in
                supervisor.forgetParkedJails(mounting: path)
            }
            let installer = LayerInstaller(
                cache: cache, registries: ["pypi": registry ?? index.url, "npm": index.npmURL], hostIDBase: supervisor.host.hostIDBase,
                logger: Logger(label: "test")
            ) { [supervisor] request in
                await supervisor.run(request, onOutput: nil)
            }
            return TaskDependencies(cache: cache, installer: installer, shared: shared)
        }

        /// Runs `body` with a worker pool of `workers` over an in-memory store.
        func withPool(
            _ dependencies: TaskDependencies, workers: Int = 2, _ body: (Pool) async throws -> Void
        ) async throws {
            let pool = Pool(supervisor: supervisor, policies: [policy, node], dependencies: dependencies, workers: workers)
            let group = ServiceGroup(services: [pool.pool], gracefulShutdownSignals: [], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                do {
                    try await body(pool)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }

        /// Wheel downloads the index served so far.
        var wheelDownloads: [String] { index.requests().filter { $0.hasSuffix(".whl") } }
    }

    struct Pool {
        let store = InMemoryTaskStore()
        let notifier = TaskNotifier()
        let pool: WorkerPool
        let policyName: String

        init(supervisor: JailSupervisor, policies: [LoadedPolicy], dependencies: TaskDependencies, workers: Int) {
            var configuration = WorkerPoolConfiguration(workerID: "test-\(UUID())", workers: workers)
            configuration.retryBaseDelay = .milliseconds(10)
            policyName = policies[0].policy.name
            pool = WorkerPool(
                store: store, runner: supervisor, policies: PolicyCatalog.fixed(policies), notifier: notifier,
                configuration: configuration, logger: Logger(label: "test"), dependencies: dependencies)
        }

        func submit(
            requirements: String, program: String = DependencyLayerTests.program, maxAttempts: Int = 3, tenant: String = "t",
            limits: LimitOverrides = LimitOverrides()
        ) async throws -> UUID {
            let files = [
                TaskFile(path: "main.py", contents: Array(program.utf8)),
                TaskFile(path: "requirements.txt", contents: Array(requirements.utf8)),
            ]
            return try await submit(files: files, policy: policyName, maxAttempts: maxAttempts, tenant: tenant, limits: limits)
        }

        func submit(
            files: [TaskFile], policy: String, maxAttempts: Int = 3, tenant: String = "t", limits: LimitOverrides = LimitOverrides()
        ) async throws -> UUID {
            let record = TaskRecord(
                tenant: tenant, spec: TaskSpec(name: "deps", policy: policy, files: files, limits: limits, maxAttempts: maxAttempts))
            try await store.create(record, limits: QueueLimits())
            notifier.changed(record.id, .queued)
            return record.id
        }

        func finished(_ id: UUID, timeout: Duration = .seconds(90)) async throws -> TaskRecord {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let task = try await store.task(id: id), task.status.isFinished { return task }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try #require(try await store.task(id: id))
        }
    }

    func withEnvironment(_ body: (Environment) async throws -> Void) async throws {
        let index = PackageIndex()
        try index.start()
        defer { index.shutdown() }
        let layers = NSTemporaryDirectory() + "edgy-layers-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: layers) }
        let supervisor = try JailSupervisor(host: JailHostConfiguration(egress: Self.egress), cgroups: TestSupport.sharedCgroups())
        defer { supervisor.shutdown() }
        if let why = supervisor.egressUnavailable { Issue.record("egress unavailable: \(why)"); return }
        // The shipped policy, with pip told to take the test's plain-HTTP index (as an operator's
        // policy for an HTTP mirror would).
        var python = try PolicyLoader.load(file: TestSupport.repositoryRoot + "/policies/python.toml").policy
        python.dependencies.install += ["--trusted-host", PackageIndex.address]
        let policy = LoadedPolicy(policy: python, warnings: [], path: "python.toml")
        let node = try PolicyLoader.load(file: TestSupport.repositoryRoot + "/policies/node.toml")
        try await body(Environment(supervisor: supervisor, index: index, layers: layers, policy: policy, node: node))
    }

    func lines(_ task: TaskRecord) -> [String] { (task.lastReport?.stdoutText ?? "").split(separator: "\n").map(String.init) }

    @Test func aTaskImportsItsPackageAndTheNextOneSkipsTheInstall() async throws {
        try await withEnvironment { env in
            try await env.withPool(try env.dependencies()) { pool in
                let first = try await pool.finished(try await pool.submit(requirements: "edgytoy==1.0\n"))
                #expect(first.status == .succeeded, "\(first.lastReport?.dependencies?.error ?? "") \(first.lastReport?.dependencies?.log ?? "") \(first.lastReport?.stderrText ?? "")")
                #expect(lines(first).first == "hello from edgytoy 1.0")
                let installed = try #require(first.lastReport?.dependencies)
                #expect(installed.source == .installed && LayerKey.isKey(installed.key))
                #expect((installed.layerBytes ?? 0) > 0 && installed.installMs != nil)
                #expect(env.wheelDownloads.count == 1)

                let second = try await pool.finished(try await pool.submit(requirements: "edgytoy==1.0\n", tenant: "other"))
                #expect(lines(second).first == "hello from edgytoy 1.0")
                #expect(second.lastReport?.dependencies?.source == .cached)
                #expect(second.lastReport?.dependencies?.key == installed.key)
                #expect(second.lastReport?.dependencies?.installMs == nil)
                #expect(env.wheelDownloads.count == 1, "no second download: \(env.wheelDownloads)")
            }
        }
    }

    /// The shipped `node` policy: npm installs the package.json into the layer, require() finds it.
    @Test func aNodeTaskRequiresItsPackageAndTheNextOneSkipsTheInstall() async throws {
        try await withEnvironment { env in
            try await env.withPool(try env.dependencies()) { pool in
                let files = [
                    TaskFile(path: "main.js", contents: Array("console.log(require('edgyleft').hello())\n".utf8)),
                    TaskFile(path: "package.json", contents: Array(#"{"dependencies": {"edgyleft": "^1.0.0"}}"#.utf8)),
                ]
                let first = try await pool.finished(try await pool.submit(files: files, policy: "node"))
                let report = try #require(first.lastReport?.dependencies)
                #expect(first.status == .succeeded, "\(report.error ?? "") \(report.log ?? "") \(first.lastReport?.stderrText ?? "")")
                #expect(lines(first).first == "hello from edgyleft 1.0.0")
                #expect(report.source == .installed)
                let tarballs = { env.index.requests().filter { $0.hasSuffix(".tgz") }.count }
                #expect(tarballs() == 1)
                let second = try await pool.finished(try await pool.submit(files: files, policy: "node", tenant: "other"))
                #expect(lines(second).first == "hello from edgyleft 1.0.0")
                #expect(second.lastReport?.dependencies?.source == .cached)
                #expect(tarballs() == 1)
            }
        }
    }

    /// Two hosts on one PostgreSQL store: the first installs and shares the layer; the second,
    /// whose registry is unreachable, fetches it instead of installing, and its run imports it.
    @Test func aLayerOneHostBuiltIsFetchedByAnotherFromTheSharedStore() async throws {
        try await withEnvironment { env in
            let otherLayers = env.layers + "-b"
            defer { try? FileManager.default.removeItem(atPath: otherLayers) }
            try await PostgresTestServer.withStores(2) { stores, _ in
                let files = [TaskFile(path: "requirements.txt", contents: Array("edgytoy==1.0\n".utf8))]
                let first = try env.dependencies(shared: stores[0])
                guard case .ready(let lease, let installed)? = await first.acquire(policy: env.policy.policy, policyDigest: env.policy.digest, files: files) else {
                    Issue.record("host A did not install the layer"); return
                }
                lease.release()
                #expect(installed.source == .installed)
                // The upload runs beside the attempt: wait for it.
                let deadline = ContinuousClock.now + .seconds(30)
                while try await stores[1].layerArchive(key: installed.key) == nil {
                    guard ContinuousClock.now < deadline else { Issue.record("the layer was never shared"); return }
                    try await Task.sleep(for: .milliseconds(50))
                }
                let second = try env.dependencies(registry: env.index.unreachableURL, directory: otherLayers, shared: stores[1])
                guard case .ready(let fetchedLease, let fetched)? = await second.acquire(policy: env.policy.policy, policyDigest: env.policy.digest, files: files) else {
                    Issue.record("host B has no layer"); return
                }
                defer { fetchedLease.release() }
                #expect(fetched.source == .fetched && fetched.key == installed.key, "\(fetched)")
                #expect(fetched.layerBytes == installed.layerBytes)
                #expect(env.wheelDownloads.count == 1, "host B downloaded nothing: \(env.wheelDownloads)")
                let program = TaskFile(path: "main.py", contents: Array("import edgytoy\nprint(edgytoy.hello())\n".utf8))
                let report = await env.supervisor.run(TaskDependencies.mounting(fetchedLease, into: JailRequest(policy: env.policy.policy, files: [program])), onOutput: nil)
                #expect(report.stdoutText == "hello from edgytoy 1.0\n", "\(report.stderrText)")
            }
        }
    }

    @Test func theRunReachesNoNetworkAndCannotChangeTheLayer() async throws {
        try await withEnvironment { env in
            let dependencies = try env.dependencies()
            try await env.withPool(dependencies) { pool in
                let task = try await pool.finished(try await pool.submit(requirements: "edgytoy==1.0\n"))
                #expect(task.status == .succeeded, "\(task.lastReport?.stderrText ?? "")")
                let out = lines(task)
                #expect(out.first == "hello from edgytoy 1.0")
                #expect(out.contains { $0.hasPrefix("connect refused") }, "\(out)")
                for what in ["write", "remove", "create"] {
                    #expect(out.contains { $0.hasPrefix("\(what) refused") }, "\(what): \(out)")
                }
                // The layer on the host is as pip wrote it, owned by root, read-only to others.
                let key = try #require(task.lastReport?.dependencies?.key)
                let module = dependencies.cache.path(of: key) + "/edgytoy/__init__.py"
                #expect(try String(contentsOfFile: module, encoding: .utf8) == PackageIndex.packages[0].module)
                var st = stat()
                #expect(stat(module, &st) == 0 && st.st_uid == 0 && st.st_mode & 0o022 == 0)
                // Another tenant's task gets the same, unchanged layer.
                let other = try await pool.finished(try await pool.submit(requirements: "edgytoy==1.0\n", tenant: "other"))
                #expect(lines(other).first == "hello from edgytoy 1.0")
            }
        }
    }

    /// The install runs under the policy's limits: a task that tightens its own (here memory, below
    /// what pip needs) cannot fail an install that other tasks may be waiting for.
    @Test func aTasksOwnLimitsDoNotBindItsInstall() async throws {
        try await withEnvironment { env in
            try await env.withPool(try env.dependencies()) { pool in
                let task = try await pool.finished(try await pool.submit(
                    requirements: "edgytoy==2.0\n", program: "print('small')", limits: LimitOverrides(memoryMib: 12)))
                let report = try #require(task.lastReport?.dependencies)
                #expect(report.source == .installed, "\(report.error ?? "") \(report.log ?? "")")
            }
        }
    }

    @Test func concurrentTasksWithOneManifestInstallItOnce() async throws {
        try await withEnvironment { env in
            try await env.withPool(try env.dependencies(), workers: 3) { pool in
                var ids: [UUID] = []
                for tenant in ["a", "b", "c"] { ids.append(try await pool.submit(requirements: "edgytoy==2.0\n", tenant: tenant)) }
                var sources: [DependencyReport.Source] = []
                for id in ids {
                    let task = try await pool.finished(id)
                    #expect(task.status == .succeeded, "\(task.lastReport?.stderrText ?? "")")
                    #expect(lines(task).first == "hello from edgytoy 2.0")
                    sources.append(try #require(task.lastReport?.dependencies?.source))
                }
                #expect(sources.filter { $0 == .installed }.count == 1, "\(sources)")
                #expect(env.wheelDownloads.count == 1, "\(env.wheelDownloads)")
            }
        }
    }

    @Test func aMissingPackageFailsWithItsLogAndIsNotRetried() async throws {
        try await withEnvironment { env in
            try await env.withPool(try env.dependencies()) { pool in
                let task = try await pool.finished(try await pool.submit(requirements: "nosuchpackage==1.0\n"))
                #expect(task.status == .failed)
                #expect(task.attempts.map(\.outcome) == [.dependencyError])
                let report = try #require(task.lastReport?.dependencies)
                #expect(report.source == .failed && report.retryable == false)
                #expect(report.log?.contains("No matching distribution found for nosuchpackage") == true, "\(report.log ?? "")")
                #expect(report.error?.contains("exited") == true, "\(report.error ?? "")")
            }
        }
    }

    @Test func anUnreachableRegistryIsRetried() async throws {
        try await withEnvironment { env in
            try await env.withPool(try env.dependencies(registry: env.index.unreachableURL)) { pool in
                let task = try await pool.finished(try await pool.submit(requirements: "edgytoy==1.0\n", maxAttempts: 2))
                #expect(task.status == .failed)
                #expect(task.attempts.map(\.outcome) == [.dependencyError, .dependencyError])
                let report = try #require(task.lastReport?.dependencies)
                #expect(report.retryable == true)
                #expect(report.error?.contains("unreachable") == true, "\(report.error ?? "")")
            }
        }
    }

    @Test func evictionKeepsTheLayersUnderTheCapAndSparesLayersInUse() async throws {
        try await withEnvironment { env in
            // Measure two layers with room for both.
            var sizes: [String: UInt64] = [:]
            try await env.withPool(try env.dependencies()) { pool in
                for requirements in ["edgybig==1.0\n", "edgytoy==1.0\n"] {
                    let task = try await pool.finished(try await pool.submit(requirements: requirements, program: "print('ok')"))
                    #expect(task.status == .succeeded, "\(task.lastReport?.dependencies?.log ?? "")")
                    let report = try #require(task.lastReport?.dependencies)
                    sizes[requirements] = report.layerBytes
                }
            }
            let big = try #require(sizes["edgybig==1.0\n"]), toy = try #require(sizes["edgytoy==1.0\n"])
            #expect(big > 200_000 && toy < big)
            // Reopened with room for one: the least recently used (edgybig) goes at once.
            let small = try env.dependencies(capBytes: big + toy - 1)
            #expect(small.cache.summaries().map(\.bytes) == [toy])
            #expect(small.cache.totalBytes <= big + toy - 1)
            // A layer in use stays past the cap until released.
            let held = await small.acquire(policy: env.policy.policy, policyDigest: env.policy.digest, files: [
                TaskFile(path: "requirements.txt", contents: Array("edgytoy==1.0\n".utf8)),
            ])
            guard case .ready(let lease, let report)? = held else { Issue.record("no layer: \(String(describing: held))"); return }
            #expect(report.source == .cached)
            let other = await small.acquire(policy: env.policy.policy, policyDigest: env.policy.digest, files: [
                TaskFile(path: "requirements.txt", contents: Array("edgybig==1.0\n".utf8)),
            ])
            guard case .ready(let bigLease, _)? = other else { Issue.record("no layer: \(String(describing: other))"); return }
            #expect(small.cache.summaries().count == 2, "both in use")
            bigLease.release()
            // edgybig is now the most recently used but the only unused one: it goes.
            #expect(small.cache.summaries().map(\.key) == [lease.key])
            lease.release()
            #expect(small.cache.totalBytes <= big + toy - 1)
            #expect(FileManager.default.fileExists(atPath: small.cache.path(of: lease.key)))
        }
    }
}
