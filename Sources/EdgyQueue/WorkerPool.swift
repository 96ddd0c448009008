import EdgyJail
import EdgyLayers
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// How the pool claims, heartbeats and retries.
public struct WorkerPoolConfiguration: Sendable {
    /// This daemon's identity in leases; stable across restarts so a restarted daemon reclaims
    /// its own interrupted attempts at once instead of waiting for their leases to expire.
    public var workerID: String
    /// Attempts run at once (default: the number of cores).
    public var workers: Int
    public var leaseDuration: Duration
    public var heartbeatInterval: Duration
    /// How often an idle worker looks at the store when nothing woke it (other hosts' tasks).
    public var idlePollInterval: Duration
    /// The first retry waits this long; each further retry doubles it, up to `maxRetryDelay`.
    public var retryBaseDelay: Duration
    public var maxRetryDelay: Duration
    /// On graceful shutdown, running attempts get this long to finish before they are killed.
    public var shutdownGracePeriod: Duration
    /// Running attempts one tenant may have at once (across every worker sharing the store); nil
    /// for no limit. Its other queued tasks wait their turn.
    public var maxRunningPerTenant: Int? = nil

    public init(
        workerID: String, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
        leaseDuration: Duration = .seconds(30), heartbeatInterval: Duration = .seconds(5),
        idlePollInterval: Duration = .milliseconds(500), retryBaseDelay: Duration = .milliseconds(500),
        maxRetryDelay: Duration = .seconds(60), shutdownGracePeriod: Duration = .seconds(10)
    ) {
        self.workerID = workerID
        self.workers = workers
        self.leaseDuration = leaseDuration
        self.heartbeatInterval = heartbeatInterval
        self.idlePollInterval = idlePollInterval
        self.retryBaseDelay = retryBaseDelay
        self.maxRetryDelay = maxRetryDelay
        self.shutdownGracePeriod = shutdownGracePeriod
    }
}

/// The worker pool: `workers` loops that lease a task, run one attempt through the runner (a
/// jail, in production), record it and decide what comes next. A `Service`: on graceful shutdown it stops claiming,
/// lets running attempts finish within the grace period, then kills them and hands their tasks
/// back to the queue.
public final class WorkerPool: Service, TaskDispatcher, Sendable {
    let store: any TaskStore
    let runner: any JailRunner
    let policies: PolicyCatalog
    let notifier: TaskNotifier
    let configuration: WorkerPoolConfiguration
    let logger: Logger
    private let running = Atomic<Int>(0)
    /// Idle workers sleep here; a new task can be handed to one of them already claimed.
    private let idle = WakeSignal<ClaimedTask>()

    /// Dependency layers for tasks whose policy takes them (nil: such tasks run without).
    let dependencies: TaskDependencies?
    /// Where files given by reference are read from and collected outputs go: the task store.
    let blobs: (any BlobStore)?

    public init(
        store: any TaskStore, runner: any JailRunner, policies: PolicyCatalog, notifier: TaskNotifier,
        configuration: WorkerPoolConfiguration, logger: Logger, dependencies: TaskDependencies? = nil
    ) {
        self.dependencies = dependencies
        self.store = store
        self.runner = runner
        self.policies = policies
        self.notifier = notifier
        self.configuration = configuration
        self.logger = logger
        self.blobs = store as? any BlobStore
    }

    /// Workers asleep with nothing to claim: the next task created through the pool goes to one.
    public var idleWorkers: Int { idle.sleeping }

    /// Attempts running now.
    public var runningAttempts: Int { running.load(ordering: .relaxed) }

    public func run() async throws {
        // A previous run of this daemon that died (kill -9) left leases in our name: those
        // attempts are lost, and their tasks go back to the queue now.
        let reclaimed = try await store.reclaimLeases(expiredBefore: Date(), ownedBy: configuration.workerID, retryDelay: .zero)
        if !reclaimed.isEmpty {
            logger.notice("reclaimed attempts interrupted by a previous run", metadata: ["tasks": "\(reclaimed.count)"])
            for id in reclaimed { notifier.changed(id, .unknown) }
        }
        let stopClaiming = StopFlag()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                // Each claimable task (from this host's API, or any notice from another host) wakes one
                // idle worker at once, not all of them: the others' claims would find nothing.
                // Tasks that become claimable otherwise (a retry delay passing) are found by polling.
                group.addTask { [notifier, idle] in
                    for await _ in notifier.changes(of: nil, only: [.queued]) { idle.signalOne() }
                }
                for index in 0..<configuration.workers {
                    group.addTask { [self] in
                        await workerLoop(index: index, stopClaiming: stopClaiming)
                    }
                }
                // The loops end on graceful shutdown; then the wake-up pump is cancelled.
                for _ in 0..<configuration.workers { await group.next() }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            stopClaiming.set()
            self.idle.signal(close: true)
        }
    }

    public func createAndDispatch(_ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?) async throws -> Bool {
        guard let worker = idle.reserve() else {
            try await store.create(task, limits: limits, callback: callback)
            return false
        }
        // Should the create throw, the dropped reservation hands nil: the worker claims for itself.
        let claimed = try await store.createAndClaim(
            task, limits: limits, callback: callback, worker: configuration.workerID, leaseDuration: configuration.leaseDuration,
            now: Date(), maxRunningPerTenant: configuration.maxRunningPerTenant)
        worker.hand(claimed)
        return claimed?.task.id == task.id
    }

    private func workerLoop(index: Int, stopClaiming: StopFlag) async {
        // A task claimed for this worker while it slept. It runs even if shutdown began meanwhile
        // (its heartbeat gives it the grace period): nobody else holds its lease.
        var handed: ClaimedTask?
        while true {
            let claimed: ClaimedTask
            if let task = handed {
                claimed = task
                handed = nil
            } else {
                guard !stopClaiming.isSet && !Task.isCancelled else { return }
                let generation = idle.generation
                let found: ClaimedTask?
                do {
                    found = try await store.claim(
                        worker: configuration.workerID, leaseDuration: configuration.leaseDuration, now: Date(),
                        maxRunningPerTenant: configuration.maxRunningPerTenant)
                } catch {
                    logger.error("claim failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
                guard let found else {
                    handed = await idle.wait(since: generation, upTo: configuration.idlePollInterval)
                    continue
                }
                claimed = found
            }
            // Listen for a cancel request (or the task's deletion, or end) before anything can await:
            // one that arrives while the attempt is still being prepared then waits for the
            // heartbeat, not for the next lease renewal. The task's own output needs no renewal.
            let changed = WakeSignal<Never>()
            let subscription = notifier.subscribe(to: claimed.task.id, only: [.cancelRequested, .ended]) { _ in changed.signal() }
            notifier.changed(claimed.task.id, .running)
            running.add(1, ordering: .relaxed)
            await runAttempt(claimed, changed: changed, subscription: subscription, stopClaiming: stopClaiming)
            running.subtract(1, ordering: .relaxed)
        }
    }


    /// `changed` is signalled by `subscription` on a cancel request or the task's end; this ends
    /// the subscription before it records the attempt.
    private func runAttempt(_ claimed: ClaimedTask, changed: WakeSignal<Never>, subscription: UInt64, stopClaiming: StopFlag) async {
        var subscribed = true
        defer { if subscribed { notifier.unsubscribe(subscription) } }
        let task = claimed.task
        let metadata: Logger.Metadata = ["task": "\(task.id)", "attempt": "\(claimed.attempt)", "policy": "\(task.spec.policy)"]
        let started = ContinuousClock.now

        var request: JailRequest
        let policy: Policy
        let loaded: Policy
        switch prepare(task) {
        case .success(let prepared):
            (request, policy, loaded) = prepared
        case .failure(let failure):
            // The task cannot run any more (its policy went away or changed under it).
            var report = AttemptReport(outcome: .setupError, policyName: task.spec.policy)
            report.setup = failure.setup
            await finish(task, attempt: claimed.attempt, outcome: .setupError, report: report, disposition: .failed, metadata: metadata)
            return
        }
        if let failure = await readBlobs(into: &request) {
            // A store fault (or a blob that no longer matches its digest): retried like any setup error.
            var report = AttemptReport(outcome: .setupError, policyName: policy.name, policyDigest: request.policyDigest)
            report.setup = failure.setup
            let disposition = Self.disposition(
                for: report, attempt: claimed.attempt, maxAttempts: task.spec.maxAttempts, retryOn: policy.retry.retryOn,
                retryDelay: retryDelay(afterAttempt: claimed.attempt))
            await finish(task, attempt: claimed.attempt, outcome: .setupError, report: report, disposition: disposition, metadata: metadata)
            return
        }

        let interruption = InterruptionCell()
        let output = OutputForwarder(store: store, notifier: notifier, taskID: task.id, attempt: claimed.attempt)
        let prepared = request
        let jailEnded = StopFlag()
        var report: AttemptReport = await withTaskGroup(of: AttemptReport.self) { group in
            group.addTask { [runner, dependencies] in
                defer {
                    jailEnded.set()
                    changed.signal()
                }
                // A multi-step task's steps, or the one command.
                let steps = task.spec.steps.map { _ in StepsRunner(runner: runner, loaded: loaded, taskLimits: task.spec.limits, forwarder: output) }
                @Sendable func execute(_ request: JailRequest, _ provided: DependencyReport?) async -> AttemptReport {
                    if let steps, let list = task.spec.steps { return await steps.run(request, steps: list, dependencies: provided) }
                    var report = await runner.run(request) { kind, bytes in output.send(kind, bytes) }
                    report.dependencies = provided
                    return report
                }
                // The dependency step runs under the attempt's heartbeat: an install keeps the lease.
                let request = prepared
                let declares = policy.dependencies.enabled && request.files.contains { $0.path == policy.dependencies.manifest }
                guard declares else { return await execute(request, nil) }
                guard let dependencies, let acquired = await dependencies.acquire(
                    policy: loaded, policyDigest: request.policyDigest, files: request.files)
                else {
                    var report = AttemptReport(outcome: .dependencyError, policyName: policy.name, policyDigest: request.policyDigest)
                    report.dependencies = DependencyReport(
                        key: "", source: .failed, error: "this edgyd installs no dependencies (its start-up log says why)", retryable: false)
                    return report
                }
                switch acquired {
                case .failed(let why):
                    var report = AttemptReport(outcome: .dependencyError, policyName: policy.name, policyDigest: request.policyDigest)
                    report.dependencies = why
                    return report
                case .ready(let lease, let provided):
                    defer { lease.release() }
                    return await execute(TaskDependencies.mounting(lease, into: request), provided)
                }
            }
            // The heartbeat runs here, not in a task of its own: when the jail's task ends, it wakes
            // this loop and the group is done, with no other task to wake and wait for.
            let ended = await heartbeat(
                task.id, attempt: claimed.attempt, changed: changed, jailEnded: jailEnded, interruption: interruption,
                stopClaiming: stopClaiming)
            if !ended { group.cancelAll() }  // a cancel request, a lost lease or the shutdown: the jail dies
            let finished = await group.next()
            return finished ?? AttemptReport(outcome: .cancelled, policyName: policy.name)
        }
        await output.finish()
        notifier.unsubscribe(subscription)
        subscribed = false

        let cause = interruption.cause
        Metrics.Counter(label: "edgy_attempts_total", dimensions: [("outcome", report.outcome.rawValue)]).increment()
        Metrics.Timer(label: "edgy_attempt_duration_seconds").recordNanoseconds(Int64((ContinuousClock.now - started).seconds * 1e9))
        switch cause {
        case .leaseLost:
            // Someone else owns the task now (or it was deleted): record nothing.
            logger.warning("lease lost; attempt abandoned", metadata: metadata)
            return
        case .shutdown:
            // Our fault, not the workload's: the task goes back to the queue.
            await finish(task, attempt: claimed.attempt, outcome: .lost, report: nil, disposition: .retry(notBefore: Date()), metadata: metadata)
            return
        case .cancelRequested, .none:
            break
        }
        await storeOutputs(of: &report, task: task, metadata: metadata)
        let disposition = Self.disposition(
            for: report, attempt: claimed.attempt, maxAttempts: task.spec.maxAttempts, retryOn: policy.retry.retryOn,
            retryDelay: retryDelay(afterAttempt: claimed.attempt))
        await finish(task, attempt: claimed.attempt, outcome: report.outcome, report: report, disposition: disposition, metadata: metadata)
    }

    /// Renews the lease until the jail's task ends (true); on a cancel request, a lost lease or the
    /// end of the shutdown grace period it records why and returns false, which kills the jail.
    private func heartbeat(
        _ taskID: UUID, attempt: Int, changed: WakeSignal<Never>, jailEnded: StopFlag, interruption: InterruptionCell,
        stopClaiming: StopFlag
    ) async -> Bool {
        var shutdownDeadline: ContinuousClock.Instant?
        var nextRenewal = ContinuousClock.now + configuration.heartbeatInterval
        // From the fresh signal's first generation: a change noticed before this loop began counts.
        var generation: UInt64 = 0
        while true {
            if jailEnded.isSet { return true }
            if Task.isCancelled { return false }
            if stopClaiming.isSet {
                let deadline = shutdownDeadline ?? ContinuousClock.now + configuration.shutdownGracePeriod
                shutdownDeadline = deadline
                if ContinuousClock.now >= deadline {
                    interruption.record(.shutdown)
                    return false
                }
            }
            let wait: Duration = stopClaiming.isSet ? .milliseconds(100) : nextRenewal - ContinuousClock.now
            await changed.wait(since: generation, upTo: max(wait, .zero))
            if jailEnded.isSet { return true }
            let wasChanged = changed.generation != generation
            generation = changed.generation
            guard wasChanged || ContinuousClock.now >= nextRenewal else { continue }
            nextRenewal = ContinuousClock.now + configuration.heartbeatInterval
            do {
                switch try await store.renewLease(
                    taskID: taskID, attempt: attempt, worker: configuration.workerID,
                    leaseDuration: configuration.leaseDuration, now: Date())
                {
                case .held(let cancelRequested):
                    if cancelRequested {
                        interruption.record(.cancelRequested)
                        return false
                    }
                case .lost:
                    interruption.record(.leaseLost)
                    return false
                }
            } catch {
                // The attempt ended while a renewal was under way: nothing failed.
                if jailEnded.isSet { return true }
                // The store is unreachable: keep running; the lease may still be ours.
                logger.warning("lease renewal failed", metadata: ["task": "\(taskID)", "error": "\(error)"])
            }
        }
    }

    private func finish(
        _ task: TaskRecord, attempt: Int, outcome: Outcome, report: AttemptReport?, disposition: AttemptDisposition,
        metadata: Logger.Metadata
    ) async {
        var metadata = metadata
        metadata["outcome"] = "\(outcome.rawValue)"
        metadata["status"] = "\(disposition.status.rawValue)"
        // Encoded once, here: the store keeps these bytes, and a `?wait` answer writes them.
        let reportJSON = try? report?.json()
        for delay in [0, 100, 500, 2000] {
            if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
            do {
                // As the store keeps it, so that the record handed to waiters below is the stored one.
                let now = StoreTime.rounded(Date())
                let recorded = try await store.finishAttempt(
                    taskID: task.id, attempt: attempt, worker: configuration.workerID, outcome: outcome, report: report,
                    reportJSON: reportJSON, disposition: disposition, now: now)
                // The store applied `TaskRecord.finish` to the claimed record under the lease
                // (nothing else of a running task changes but its cancel flag, which finishing
                // clears): the same rule here gives the same record, without reading it back.
                var final = task
                if recorded, disposition.status.isFinished,
                   final.finish(attempt: attempt, outcome: outcome, report: report, disposition: disposition, now: now) {
                    notifier.finished(final, lastReportJSON: reportJSON)
                    // The waiter's resumption was just queued: yielding lets this thread run it at
                    // once, where the next claim would make it wait for another thread to wake.
                    await Task.yield()
                } else {
                    notifier.changed(task.id, !recorded ? .unknown : disposition.status.isFinished ? .ended : .queued)
                }
                // Logged after the waiters were woken: formatting the line is not their wait.
                logger.info(recorded ? "attempt finished" : "attempt finished after its lease was lost", metadata: metadata)
                return
            } catch {
                logger.error("recording the attempt failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
        }
        // The lease will expire; the janitor records the attempt as lost and the task retries.
    }

    /// Reads the bytes of the request's files that are blobs. Returns why it could not.
    func readBlobs(into request: inout JailRequest) async -> PrepareFailure? {
        guard request.files.contains(where: { $0.blob != nil }) else { return nil }
        guard let blobs else { return PrepareFailure(stage: "task files", detail: "this store keeps no blobs") }
        for index in request.files.indices {
            guard let sha256 = request.files[index].blob else { continue }
            do {
                guard let bytes = try await blobs.blobContents(sha256: sha256) else {
                    return PrepareFailure(stage: "task files", detail: "\(request.files[index].path): blob sha256:\(sha256) is gone")
                }
                request.files[index].contents = bytes
                request.files[index].blob = nil
            } catch {
                if error is BlobCorruptedError { Metrics.Counter(label: "edgy_blob_corrupted_total").increment() }
                return PrepareFailure(stage: "task files", detail: "\(request.files[index].path): \(error)")
            }
        }
        return nil
    }

    /// Moves the files the attempt collected into the blob store; the report keeps their list.
    func storeOutputs(of report: inout AttemptReport, task: TaskRecord, metadata: Logger.Metadata) async {
        let contents = report.outputContents
        report.outputContents = [:]
        guard !contents.isEmpty, report.outputs != nil else { return }
        do {
            guard let blobs else { throw BlobStoreMissing() }
            try await blobs.storeOutputs(taskID: task.id, tenant: task.tenant, contents: contents, now: Date())
        } catch {
            logger.error("storing the attempt's output files failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            report.outputs?.error = "the files were collected but could not be stored: \(error)"
            report.outputs?.files = []
        }
    }

    private struct BlobStoreMissing: Error, CustomStringConvertible {
        var description: String { "this store keeps no blobs" }
    }

    /// Policy + task → jail request, the effective policy (the task's limits applied) and the
    /// policy as loaded (what a dependency install runs under: one task's limits must not fail
    /// an install that other tasks wait for); or why it cannot run.
    func prepare(_ task: TaskRecord) -> Result<(JailRequest, Policy, Policy), PrepareFailure> {
        guard let loaded = policies.policy(named: task.spec.policy) else {
            return .failure(PrepareFailure(stage: "policy", detail: "policy `\(task.spec.policy)` does not exist"))
        }
        var policy = loaded.policy
        do {
            policy.limits = try policy.limits.applying(task.spec.limits)
        } catch {
            return .failure(PrepareFailure(stage: "policy", detail: "\(error)"))
        }
        let allowedEnv = Set(policy.run.taskEnv)
        let env = task.spec.env.filter { allowedEnv.contains($0.key) }
        let command = policy.run.allowCommandOverride ? task.spec.command : nil
        let files = task.spec.files
        var request = JailRequest(
            policy: policy, policyDigest: loaded.digest, files: files, command: command, stdin: task.spec.stdin,
            extraEnvironment: env, limitsOverridden: policy.limits != loaded.policy.limits)
        request.outputPatterns = task.spec.outputs?.compactMap { try? OutputPattern($0) }
        return .success((request, policy, loaded.policy))
    }

    /// What happens to the task after an attempt: success on exit 0; service faults
    /// retry up to `maxAttempts` with backoff; workload outcomes retry only where the policy's
    /// `retry_on` says.
    public static func disposition(
        for report: AttemptReport, attempt: Int, maxAttempts: Int, retryOn: [String], retryDelay: Duration
    ) -> AttemptDisposition {
        switch report.outcome {
        case .exited where report.exitCode == 0 && report.steps?.contains(where: { $0.status == .failed }) != true:
            return .succeeded
        case .cancelled:
            return .cancelled
        default:
            let retryable = report.outcome.isServiceFault || retryOn.contains(report.outcome.rawValue)
                || (report.outcome == .dependencyError && report.dependencies?.retryable == true)
            if retryable && attempt < maxAttempts {
                return .retry(notBefore: Date().addingTimeInterval(retryDelay.seconds))
            }
            return .failed
        }
    }

    func retryDelay(afterAttempt attempt: Int) -> Duration {
        let factor = 1 << min(max(attempt - 1, 0), 16)
        return min(configuration.retryBaseDelay * factor, configuration.maxRetryDelay)
    }
}

/// Why a task cannot become a jail request.
struct PrepareFailure: Error {
    var setup: SetupFailure
    init(stage: String, detail: String) { setup = SetupFailure(stage: stage, errno: nil, detail: detail) }
}

/// Why a running attempt was stopped from outside the jail.
enum Interruption: Int {
    case none = 0, cancelRequested, leaseLost, shutdown
}

/// The first interruption of an attempt, shared between its heartbeat and its runner.
final class InterruptionCell: Sendable {
    private let value = Atomic<Int>(Interruption.none.rawValue)
    func record(_ cause: Interruption) {
        _ = value.compareExchange(expected: Interruption.none.rawValue, desired: cause.rawValue, ordering: .relaxed)
    }
    var cause: Interruption { Interruption(rawValue: value.load(ordering: .relaxed)) ?? .none }
}

/// Set once, never cleared: on graceful shutdown (workers stop claiming), or when an attempt's
/// jail has ended (its heartbeat stops).
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
