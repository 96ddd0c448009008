import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyQueue
import EdgyStore
import EdgyTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The worker pool with real jails and the in-memory store.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct WorkerPoolTests {
    struct Harness {
        let store = InMemoryTaskStore()
        let notifier = TaskNotifier()
        let catalog: PolicyCatalog
        let pool: WorkerPool
        /// The pool's name in leases.
        let workerID: String

        /// Real jails unless `runner` is given.
        init(
            policies: [Policy], workers: Int = 2, grace: Duration = .seconds(5), runner: (any JailRunner)? = nil,
            configure: (inout WorkerPoolConfiguration) -> Void = { _ in }
        ) throws {
            catalog = PolicyCatalog.fixed(policies.map { LoadedPolicy(policy: $0, warnings: [], path: "") })
            workerID = "test-\(UUID())"
            var configuration = WorkerPoolConfiguration(workerID: workerID, workers: workers)
            configuration.retryBaseDelay = .milliseconds(10)
            configuration.heartbeatInterval = .milliseconds(200)
            configuration.shutdownGracePeriod = grace
            configure(&configuration)
            pool = WorkerPool(
                store: store, runner: try runner ?? TestSupport.supervisor(), policies: catalog, notifier: notifier,
                configuration: configuration, logger: Logger(label: "test"))
        }

        func submit(_ spec: TaskSpec, tenant: String = "t") async throws -> UUID {
            let record = TaskRecord(tenant: tenant, spec: spec)
            try await store.create(record, limits: QueueLimits())
            notifier.changed(record.id, .queued)
            return record.id
        }

        /// Waits until the task is finished (or `timeout` passes) and returns it.
        func finished(_ id: UUID, timeout: Duration = .seconds(20)) async throws -> TaskRecord {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let task = try await store.task(id: id), task.status.isFinished { return task }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try #require(try await store.task(id: id))
        }

        func status(_ id: UUID) async throws -> TaskStatus? { try await store.task(id: id)?.status }

        /// Runs `body` with the pool running in a service group, then shuts it down gracefully.
        func withRunningPool(_ body: () async throws -> Void) async throws {
            let group = ServiceGroup(services: [pool], gracefulShutdownSignals: [], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                do {
                    try await body()
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    static func shPolicy(_ name: String = "sh", configure: (inout Policy) -> Void = { _ in }) -> Policy {
        var policy = TestSupport.policy(["/bin/sh", "{entry}"], name: name)
        policy.run.entry = "main.sh"
        policy.run.allowCommandOverride = true
        configure(&policy)
        return policy
    }

    static func script(_ text: String, policy: String = "sh", maxAttempts: Int = 3) -> TaskSpec {
        TaskSpec(name: "t", policy: policy, files: [TaskFile(path: "main.sh", contents: Array(text.utf8))], maxAttempts: maxAttempts)
    }

    @Test func runsATaskToSuccessWithItsOutputAndEvents() async throws {
        let harness = try Harness(policies: [Self.shPolicy()])
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.script("echo hello from the queue"))
            let task = try await harness.finished(id)
            #expect(task.status == .succeeded)
            #expect(task.attempts.count == 1)
            #expect(task.lastReport?.stdoutText == "hello from the queue\n")
            let events = try await harness.store.events(taskID: id, after: 0, limit: 100)
            #expect(events.filter { $0.kind == .status }.map(\.data) == ["queued", "running", "succeeded"])
            #expect(events.filter { $0.kind == .stdout }.map(\.data).joined() == "hello from the queue\n")
        }
    }

    @Test func nonZeroExitFailsWithoutRetry() async throws {
        let harness = try Harness(policies: [Self.shPolicy()])
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.script("exit 4"))
            let task = try await harness.finished(id)
            #expect(task.status == .failed)
            #expect(task.attempts.count == 1)
            #expect(task.lastReport?.exitCode == 4)
        }
    }

    @Test func setupErrorsRetryWithBackoffUpToMaxAttempts() async throws {
        let broken = Self.shPolicy("broken") { $0.mounts.append(Policy.Mount(source: "/nonexistent/edgy")) }
        let harness = try Harness(policies: [broken])
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.script("echo never", policy: "broken", maxAttempts: 3))
            let task = try await harness.finished(id)
            #expect(task.status == .failed)
            #expect(task.attempts.map(\.outcome) == [.setupError, .setupError, .setupError])
            #expect(task.attempts.last?.report?.setup?.description == "mount /nonexistent/edgy: ENOENT")
        }
    }

    @Test func workloadOutcomesRetryOnlyWhereThePolicySays() async throws {
        let flaky = Self.shPolicy("flaky") { policy in
            policy.limits.wallTimeS = 0.3
            policy.retry.retryOn = ["wall_timeout"]
        }
        let harness = try Harness(policies: [flaky, Self.shPolicy()])
        try await harness.withRunningPool {
            let retried = try await harness.submit(Self.script("sleep 5", policy: "flaky", maxAttempts: 2))
            let plain = try await harness.submit(Self.script("kill -9 $$; sleep 1", policy: "sh", maxAttempts: 3))
            #expect(try await harness.finished(retried).attempts.map(\.outcome) == [.wallTimeout, .wallTimeout])
            #expect(try await harness.finished(plain).attempts.count == 1)
        }
    }

    @Test func cancelKillsARunningAttemptAtOnce() async throws {
        let harness = try Harness(policies: [Self.shPolicy()])
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.script("sleep 1000"))
            while try await harness.status(id) != .running { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(100))
            let asked = ContinuousClock.now
            _ = try await harness.store.requestCancel(id: id, now: Date())
            harness.notifier.changed(id, .cancelRequested)
            let task = try await harness.finished(id)
            #expect(task.status == .cancelled)
            #expect(task.attempts.last?.outcome == .cancelled)
            #expect(ContinuousClock.now - asked < .seconds(1))
        }
    }

    @Test func deletingARunningTaskKillsItsJail() async throws {
        let harness = try Harness(policies: [Self.shPolicy()])
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.script("sleep 1000"))
            while try await harness.status(id) != .running { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try await harness.store.delete(id: id))
            harness.notifier.changed(id, .ended)
            // The worker is free again: the next task runs.
            let next = try await harness.submit(Self.script("echo next"))
            #expect(try await harness.finished(next, timeout: .seconds(5)).status == .succeeded)
        }
    }

    @Test func gracefulShutdownKillsAttemptsPastTheGraceAndRequeuesThem() async throws {
        let harness = try Harness(policies: [Self.shPolicy()], workers: 1, grace: .milliseconds(300))
        var id: UUID?
        try await harness.withRunningPool {
            id = try await harness.submit(Self.script("sleep 1000"))
            while try await harness.status(id!) != .running { try await Task.sleep(for: .milliseconds(10)) }
        }
        let task = try #require(try await harness.store.task(id: id!))
        #expect(task.status == .queued)
        #expect(task.attempts.map(\.outcome) == [.lost])
    }

    @Test func manyTasksAllFinishExactlyOnce() async throws {
        let harness = try Harness(policies: [Self.shPolicy()], workers: 4)
        try await harness.withRunningPool {
            var ids: [UUID] = []
            for i in 0..<60 { ids.append(try await harness.submit(Self.script("echo \(i)"))) }
            for (i, id) in ids.enumerated() {
                let task = try await harness.finished(id, timeout: .seconds(60))
                #expect(task.status == .succeeded)
                #expect(task.attempts.count == 1)
                #expect(task.lastReport?.stdoutText == "\(i)\n")
            }
        }
    }
}
