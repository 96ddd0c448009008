import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyQueue
import EdgyStore
import EdgyTestSupport
import Foundation
import Testing

/// The worker pool's own logic (retries, leases, cancellation, shutdown) with `FakeJailRunner`
/// and the in-memory store: no jails, so these run as a normal user. `WorkerPoolTests` runs the
/// same pool with real jails.
@Suite(.timeLimit(.minutes(1)))
struct WorkerPoolLogicTests {
    typealias Harness = WorkerPoolTests.Harness

    static func policy(_ name: String = "p", retryOn: [String] = []) -> Policy {
        var policy = Policy(name: name)
        policy.retry.retryOn = retryOn
        return policy
    }

    /// A task the fake tells apart from others by its stdin.
    static func task(_ label: String, policy: String = "p", maxAttempts: Int = 3) -> TaskSpec {
        TaskSpec(name: label, policy: policy, stdin: Array(label.utf8), maxAttempts: maxAttempts)
    }

    static func label(_ request: JailRequest) -> String { String(decoding: request.stdin, as: UTF8.self) }

    /// A latency bound, stretched on slow (emulated) hosts.
    static func scaled(_ duration: Duration) -> Duration { duration * TestSupport.timeScale }

    /// How soon a cancel or a lost lease ends an attempt. The task's change notice wakes the
    /// heartbeat at once (the worker listens from the moment it claims the task); a lost lease is
    /// found at the next renewal (every 200 ms here). The bound is loose for loaded hosts.
    static let promptly = Duration.seconds(10)

    @Test func runsATaskToSuccessWithTheRunnersOutput() async throws {
        let runner = FakeJailRunner(script: [.exit(0, stdout: "hello from the fake\n")])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("a"))
            let task = try await harness.finished(id)
            #expect(task.status == .succeeded)
            #expect(task.attempts.map(\.outcome) == [.exited])
            #expect(task.lastReport?.stdoutText == "hello from the fake\n")
            #expect(task.lastReport?.policyName == "p")
            let events = try await harness.store.events(taskID: id, after: 0, limit: 100)
            #expect(events.filter { $0.kind == .status }.map(\.data) == ["queued", "running", "succeeded"])
            #expect(events.filter { $0.kind == .stdout }.map(\.data).joined() == "hello from the fake\n")
            // The runner got the task's request.
            #expect(runner.attempts.map { Self.label($0.request) } == ["a"])
        }
    }

    /// A task created through the pool while its worker sleeps is claimed in the create's
    /// transaction and handed to that worker. Nothing announces it and the worker's poll interval
    /// outlasts the test, so it runs only because it was handed over. With no worker asleep, the
    /// task is queued as usual.
    @Test func aTaskCreatedWhileAWorkerSleepsIsHandedToIt() async throws {
        let runner = FakeJailRunner(script: [.exit(0)])
        let harness = try Harness(policies: [Self.policy()], workers: 1, runner: runner) { $0.idlePollInterval = .seconds(600) }
        let early = TaskRecord(tenant: "t", spec: Self.task("early"))
        #expect(try await harness.pool.createAndDispatch(early, limits: QueueLimits(), callback: nil) == false)
        #expect(try await harness.status(early.id) == .queued)
        try await harness.withRunningPool {
            // The worker claims the early task at start, runs it, finds nothing and sleeps.
            #expect(try await harness.finished(early.id).status == .succeeded)
            let deadline = ContinuousClock.now + .seconds(10)
            while harness.pool.idleWorkers < 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(harness.pool.idleWorkers == 1)

            let handed = TaskRecord(tenant: "t", spec: Self.task("handed"))
            #expect(try await harness.pool.createAndDispatch(handed, limits: QueueLimits(), callback: nil))
            let task = try await harness.finished(handed.id, timeout: .seconds(10))
            #expect(task.status == .succeeded)
            let events = try await harness.store.events(taskID: handed.id, after: 0, limit: 100)
            #expect(events.filter { $0.kind == .status }.map(\.data) == ["queued", "running", "succeeded"])
            #expect(runner.attempts.map { Self.label($0.request) } == ["early", "handed"])
        }
    }

    @Test func onlyATaskThatChangesItsLimitsIsMarkedOverridden() async throws {
        let runner = FakeJailRunner(script: [.exit(0)])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        try await harness.withRunningPool {
            var tightened = Self.task("tightened")
            tightened.limits = LimitOverrides(memoryMib: 100)
            for spec in [Self.task("plain"), tightened] {
                let id = try await harness.submit(spec)
                let task = try await harness.finished(id)
                #expect(task.status == .succeeded)
            }
            let marks = runner.attempts.map { (Self.label($0.request), $0.request.limitsOverridden, $0.request.policyDigest) }
            #expect(marks.map(\.0) == ["plain", "tightened"])
            #expect(marks.map(\.1) == [false, true])
            // Both report the digest of the policy as loaded.
            #expect(marks.map(\.2) == Array(repeating: Self.policy().digest, count: 2))
        }
    }

    @Test func serviceFaultsRetryUpToMaxAttempts() async throws {
        let runner = FakeJailRunner(script: [.outcome(.setupError)])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("a", maxAttempts: 3))
            let task = try await harness.finished(id)
            #expect(task.status == .failed)
            #expect(task.attempts.map(\.outcome) == [.setupError, .setupError, .setupError])
            #expect(runner.attempts.count == 3)
        }
    }

    @Test func aRetryThatSucceedsEndsTheTask() async throws {
        let runner = FakeJailRunner(script: [.outcome(.lost), .exit(0)])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("a", maxAttempts: 3))
            let task = try await harness.finished(id)
            #expect(task.status == .succeeded)
            #expect(task.attempts.map(\.outcome) == [.lost, .exited])
        }
    }

    @Test func crashesRetryOnlyWhereThePolicySays() async throws {
        let runner = FakeJailRunner(script: [.crash()])
        let harness = try Harness(
            policies: [Self.policy("retrying", retryOn: ["signaled"]), Self.policy("plain")], runner: runner)
        try await harness.withRunningPool {
            let retried = try await harness.submit(Self.task("retried", policy: "retrying", maxAttempts: 2))
            let plain = try await harness.submit(Self.task("plain", policy: "plain", maxAttempts: 3))
            let retriedTask = try await harness.finished(retried)
            #expect(retriedTask.status == .failed)
            #expect(retriedTask.attempts.map(\.outcome) == [.signaled, .signaled])
            #expect(retriedTask.lastReport?.signal == SIGSEGV)
            let plainTask = try await harness.finished(plain)
            #expect(plainTask.status == .failed)
            #expect(plainTask.attempts.map(\.outcome) == [.signaled])
        }
    }

    @Test func retriesWaitForTheirBackoff() async throws {
        let runner = FakeJailRunner(script: [.outcome(.setupError)])
        let harness = try Harness(policies: [Self.policy()], runner: runner) { configuration in
            configuration.retryBaseDelay = .milliseconds(200)
            configuration.idlePollInterval = .milliseconds(20)
        }
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("a", maxAttempts: 3))
            #expect(try await harness.finished(id).attempts.count == 3)
            let starts = runner.attempts.map(\.startedAt)
            try #require(starts.count == 3)
            // The delay doubles: 200 ms after the first attempt, 400 ms after the second.
            #expect(starts[1] - starts[0] >= .milliseconds(200))
            #expect(starts[2] - starts[1] >= .milliseconds(400))
            #expect(starts[2] - starts[0] < Self.scaled(.seconds(20)))
        }
    }

    @Test func aLostLeaseEndsTheAttemptAndRecordsNothing() async throws {
        let runner = FakeJailRunner { request, _ in Self.label(request) == "held" ? .hang : .exit(0) }
        let harness = try Harness(policies: [Self.policy()], workers: 1, runner: runner)
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("held"))
            #expect(await runner.wait { $0.count == 1 })
            // Another worker's janitor takes the lease (it expired, as far as it can tell); the
            // task waits an hour before it can run again.
            let reclaimed = try await harness.store.reclaimLeases(
                expiredBefore: Date().addingTimeInterval(3600), ownedBy: nil, retryDelay: .seconds(3600))
            #expect(reclaimed == [id])
            harness.notifier.changed(id, .unknown)
            #expect(await runner.wait(upTo: Self.scaled(Self.promptly)) { $0.first?.ending == .cancelled })
            // The worker is free again: the next task runs.
            let next = try await harness.submit(Self.task("next"))
            #expect(try await harness.finished(next).status == .succeeded)
            // Only the janitor's record of the attempt: the pool wrote nothing for it.
            let task = try #require(try await harness.store.task(id: id))
            #expect(task.status == .queued)
            #expect(task.attempts.map(\.outcome) == [.lost])
            #expect(task.lastReport == nil)
        }
    }

    @Test func cancelEndsARunningAttemptAtOnce() async throws {
        let runner = FakeJailRunner(script: [.hang])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("a"))
            #expect(await runner.wait { $0.count == 1 })
            let asked = ContinuousClock.now
            _ = try await harness.store.requestCancel(id: id, now: Date())
            harness.notifier.changed(id, .cancelRequested)
            let task = try await harness.finished(id)
            #expect(ContinuousClock.now - asked < Self.scaled(Self.promptly))
            #expect(task.status == .cancelled)
            #expect(task.attempts.map(\.outcome) == [.cancelled])
            #expect(runner.attempts.map(\.ending) == [.cancelled])
        }
    }

    /// A cancel sent the moment the task is claimed, before its jail starts, must not wait for a
    /// lease renewal: renewals are an hour apart here.
    @Test func aCancelRightAfterTheClaimIsNotLost() async throws {
        let runner = FakeJailRunner(script: [.hang])
        let harness = try Harness(policies: [Self.policy()], runner: runner) { $0.heartbeatInterval = .seconds(3600) }
        try await harness.withRunningPool {
            let claims = harness.notifier.changes(of: nil, only: [.running])
            let id = try await harness.submit(Self.task("a"))
            for await claimed in claims where claimed == id { break }
            let asked = ContinuousClock.now
            _ = try await harness.store.requestCancel(id: id, now: Date())
            harness.notifier.changed(id, .cancelRequested)
            let task = try await harness.finished(id)
            #expect(ContinuousClock.now - asked < Self.scaled(Self.promptly))
            #expect(task.status == .cancelled)
        }
    }

    @Test func gracefulShutdownLetsRunningAttemptsFinishAndStopsClaiming() async throws {
        let runner = FakeJailRunner { request, _ in
            Self.label(request) == "running" ? .slow(.milliseconds(300), then: .exit(0)) : .exit(0)
        }
        let harness = try Harness(policies: [Self.policy()], workers: 1, grace: .seconds(40), runner: runner)
        var running: UUID?
        var waiting: UUID?
        var shutdownAsked = ContinuousClock.now
        try await harness.withRunningPool {
            running = try await harness.submit(Self.task("running"))
            #expect(await runner.wait { $0.count == 1 })
            waiting = try await harness.submit(Self.task("waiting"))
            shutdownAsked = ContinuousClock.now
        }
        // The pool stopped as soon as its attempt finished, not at the end of the grace period.
        #expect(ContinuousClock.now - shutdownAsked < Self.scaled(.seconds(20)))
        let runningID = try #require(running)
        let waitingID = try #require(waiting)
        let finished = try #require(try await harness.store.task(id: runningID))
        #expect(finished.status == .succeeded)
        #expect(finished.attempts.map(\.outcome) == [.exited])
        // Nothing new was claimed once shutdown began.
        let queued = try #require(try await harness.store.task(id: waitingID))
        #expect(queued.status == .queued)
        #expect(queued.attempts.isEmpty)
        #expect(runner.attempts.map { Self.label($0.request) } == ["running"])
    }

    @Test func gracefulShutdownHandsBackAttemptsPastTheGrace() async throws {
        let runner = FakeJailRunner(script: [.hang])
        let grace = Duration.milliseconds(300)
        let harness = try Harness(policies: [Self.policy()], workers: 2, grace: grace, runner: runner)
        var ids: [UUID] = []
        var shutdownAsked = ContinuousClock.now
        try await harness.withRunningPool {
            ids = [try await harness.submit(Self.task("a")), try await harness.submit(Self.task("b"))]
            #expect(await runner.wait { $0.count == 2 })
            shutdownAsked = ContinuousClock.now
        }
        let took = ContinuousClock.now - shutdownAsked
        #expect(took >= grace)
        #expect(took < grace + Self.scaled(.seconds(20)))
        #expect(runner.attempts.map(\.ending) == [.cancelled, .cancelled])
        for id in ids {
            let task = try #require(try await harness.store.task(id: id))
            // Not the workload's fault: back in the queue, to run again at once.
            #expect(task.status == .queued)
            #expect(task.attempts.map(\.outcome) == [.lost])
            #expect(task.notBefore <= Date())
        }
    }

    @Test func workersBoundTheAttemptsRunningAtOnce() async throws {
        let runner = FakeJailRunner(script: [.hang])
        let harness = try Harness(policies: [Self.policy()], workers: 3, grace: .milliseconds(100), runner: runner)
        try await harness.withRunningPool {
            for index in 0..<5 { _ = try await harness.submit(Self.task("t\(index)")) }
            #expect(await runner.wait { $0.count == 3 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(runner.attempts.count == 3)
            #expect(harness.pool.runningAttempts == 3)
        }
        #expect(harness.pool.runningAttempts == 0)
        #expect(runner.running == 0)
    }

    @Test func aTaskWhosePolicyIsGoneFailsWithoutRunning() async throws {
        let runner = FakeJailRunner(script: [.exit(0)])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        try await harness.withRunningPool {
            let id = try await harness.submit(Self.task("a", policy: "removed"))
            let task = try await harness.finished(id)
            #expect(task.status == .failed)
            #expect(task.attempts.map(\.outcome) == [.setupError])
            #expect(task.lastReport?.setup?.stage == "policy")
            #expect(runner.attempts.isEmpty)
        }
    }

    @Test func attemptsInterruptedInAPreviousRunAreReclaimedAtStart() async throws {
        let runner = FakeJailRunner(script: [.exit(0)])
        let harness = try Harness(policies: [Self.policy()], runner: runner)
        // A previous run of this worker claimed the task and died holding the lease.
        let id = try await harness.submit(Self.task("a"))
        let claimed = try await harness.store.claim(
            worker: harness.workerID, leaseDuration: .seconds(3600), now: Date(), maxRunningPerTenant: nil)
        #expect(claimed?.task.id == id)
        try await harness.withRunningPool {
            let task = try await harness.finished(id)
            #expect(task.status == .succeeded)
            #expect(task.attempts.map(\.outcome) == [.lost, .exited])
        }
    }

    @Test(arguments: [
        (Outcome.exited, Int32?(0), 1, [String](), "succeeded"),
        (.exited, 1, 1, [], "failed"),
        (.setupError, nil, 1, [], "retry"),
        (.setupError, nil, 3, [], "failed"),
        (.lost, nil, 2, [], "retry"),
        (.wallTimeout, nil, 1, [], "failed"),
        (.wallTimeout, nil, 1, ["wall_timeout"], "retry"),
        (.wallTimeout, nil, 3, ["wall_timeout"], "failed"),
        (.memoryLimit, nil, 1, ["wall_timeout"], "failed"),
        (.cancelled, nil, 1, [], "cancelled"),
    ])
    func dispositionTable(outcome: Outcome, exitCode: Int32?, attempt: Int, retryOn: [String], expected: String) {
        let report = AttemptReport(outcome: outcome, exitCode: exitCode)
        let disposition = WorkerPool.disposition(for: report, attempt: attempt, maxAttempts: 3, retryOn: retryOn, retryDelay: .seconds(1))
        let name: String
        switch disposition {
        case .succeeded: name = "succeeded"
        case .failed: name = "failed"
        case .cancelled: name = "cancelled"
        case .retry: name = "retry"
        }
        #expect(name == expected)
    }
}
