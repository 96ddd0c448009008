import EdgyModel
import EdgyPolicy
import Foundation

/// Where a task is in its life: `queued → running → succeeded | failed | cancelled`. A task goes
/// back from `running` to `queued` when an attempt is retried or its lease is lost.
public enum TaskStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// What a client asked for, validated before it reaches the store: nothing malformed is queued.
public struct TaskSpec: Sendable, Hashable, Codable {
    public var name: String
    public var policy: String
    /// The task's files, the policy's entry file (from `input`) among them.
    public var files: [TaskFile]
    /// Replaces the policy's command, where the policy allows it.
    public var command: [String]?
    public var stdin: [UInt8]
    public var env: [String: String]
    public var limits: LimitOverrides
    public var maxAttempts: Int
    /// Output patterns the task asked for, a subset of the policy's `[outputs] paths`: nil for all
    /// of them, empty for none.
    public var outputs: [String]?
    /// A multi-step task's steps (then `command` and `stdin` are unused); nil for one command.
    public var steps: [StepSpec]?

    public init(
        name: String, policy: String, files: [TaskFile] = [], command: [String]? = nil,
        stdin: [UInt8] = [], env: [String: String] = [:], limits: LimitOverrides = LimitOverrides(),
        maxAttempts: Int = 3, outputs: [String]? = nil, steps: [StepSpec]? = nil
    ) {
        self.outputs = outputs
        self.steps = steps
        self.name = name
        self.policy = policy
        self.files = files
        self.command = command
        self.stdin = stdin
        self.env = env
        self.limits = limits
        self.maxAttempts = maxAttempts
    }
}

/// One attempt at running a task.
public struct AttemptRecord: Sendable, Hashable, Codable {
    /// 1 for the first attempt.
    public var number: Int
    public var worker: String
    public var startedAt: Date
    public var finishedAt: Date?
    /// nil while the attempt runs.
    public var outcome: Outcome?
    /// The jail's report; nil while running and for `lost` attempts.
    public var report: AttemptReport?

    public init(number: Int, worker: String, startedAt: Date, finishedAt: Date? = nil, outcome: Outcome? = nil, report: AttemptReport? = nil) {
        self.number = number
        self.worker = worker
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.report = report
    }
}

/// A task as stored.
public struct TaskRecord: Sendable, Hashable, Codable, Identifiable {
    public var id: UUID
    public var tenant: String
    public var spec: TaskSpec
    public var status: TaskStatus
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    /// The task is not claimed before this time (retry backoff).
    public var notBefore: Date
    /// Set when a cancel arrives while an attempt runs; the worker kills the jail.
    public var cancelRequested: Bool
    public var attempts: [AttemptRecord]

    public init(
        id: UUID = UUID(), tenant: String, spec: TaskSpec, status: TaskStatus = .queued,
        createdAt: Date = Date(), updatedAt: Date? = nil, finishedAt: Date? = nil, notBefore: Date? = nil,
        cancelRequested: Bool = false, attempts: [AttemptRecord] = []
    ) {
        self.id = id
        self.tenant = tenant
        self.spec = spec
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.finishedAt = finishedAt
        self.notBefore = notBefore ?? createdAt
        self.cancelRequested = cancelRequested
        self.attempts = attempts
    }

    /// Bytes this record keeps for its tenant: file contents, stdin and every attempt's output
    /// (output events are counted by the store on top).
    public var storedBytes: Int64 {
        let files = spec.files.reduce(0) { $0 + $1.contents.count }
        let output = attempts.reduce(0) { sum, attempt in sum + (attempt.report.map { $0.stdout.count + $0.stderr.count } ?? 0) }
        let steps = spec.steps?.reduce(0) { $0 + $1.storedBytes } ?? 0
        return Int64(files) + Int64(spec.stdin.count) + Int64(steps) + Int64(output)
    }

    /// The report of the last attempt that has one.
    public var lastReport: AttemptReport? { attempts.last(where: { $0.report != nil })?.report }
}

extension TaskRecord {
    /// The state change when `worker` claims the task for attempt `attempt`. Every store applies
    /// this rule, in one transaction.
    public mutating func start(attempt: Int, worker: String, now: Date) {
        status = .running
        updatedAt = now
        attempts.append(AttemptRecord(number: attempt, worker: worker, startedAt: now))
    }

    /// The state change when attempt `attempt` ends: its outcome and report are recorded and the
    /// task takes the disposition's status (back to `queued` from `notBefore` for a retry).
    /// Returns false when there is no such attempt. Every store applies this rule, in one transaction.
    public mutating func finish(
        attempt: Int, outcome: Outcome, report: AttemptReport?, disposition: AttemptDisposition, now: Date
    ) -> Bool {
        guard let index = attempts.firstIndex(where: { $0.number == attempt }) else { return false }
        attempts[index].finishedAt = now
        attempts[index].outcome = outcome
        attempts[index].report = report
        status = disposition.status
        updatedAt = now
        if case .retry(let notBefore) = disposition {
            self.notBefore = notBefore
        } else {
            finishedAt = now
        }
        cancelRequested = false
        return true
    }

    /// The state change when attempt `attempt` lost its lease (its worker died, or a restarted
    /// daemon reclaims it): the attempt is `lost`; the task is cancelled if a cancel was asked
    /// for, failed if it has used its attempts, else queued again from `now + retryDelay`.
    /// Every store applies this rule, in one transaction.
    public mutating func loseLease(ofAttempt attempt: Int, now: Date, retryDelay: Duration) {
        if let index = attempts.firstIndex(where: { $0.number == attempt }) {
            attempts[index].finishedAt = now
            attempts[index].outcome = .lost
        }
        if cancelRequested {
            status = .cancelled
            finishedAt = now
        } else if attempts.count >= spec.maxAttempts {
            status = .failed
            finishedAt = now
        } else {
            status = .queued
            notBefore = now.addingTimeInterval(retryDelay.seconds)
        }
        updatedAt = now
    }

    /// What a cancel request did to a task.
    public enum CancelEffect: Sendable, Equatable {
        /// It was queued and is now cancelled (a status change, with its event).
        case cancelled
        /// It is running: `cancelRequested` is set, and its worker kills the jail.
        case requested
        /// It had finished: nothing changed.
        case unchanged
    }

    /// The state change when a client cancels the task. Every store applies this rule, in one
    /// transaction.
    public mutating func requestCancel(now: Date) -> CancelEffect {
        switch status {
        case .queued:
            status = .cancelled
            finishedAt = now
            updatedAt = now
            return .cancelled
        case .running:
            cancelRequested = true
            updatedAt = now
            return .requested
        case .succeeded, .failed, .cancelled:
            return .unchanged
        }
    }
}

extension TaskRecord {
    /// This record as the API shows it: each file's bytes left out (`TaskFile.omittedSize` keeps
    /// their count), no stdin and no steps, which no answer shows. What `TaskStore.taskSummary`
    /// and summary pages hold; never a task to run.
    public var summary: TaskRecord {
        var copy = self
        copy.spec.files = spec.files.map { file in
            var summary = file
            summary.omittedSize = file.size
            summary.contents = []
            return summary
        }
        copy.spec.stdin = []
        copy.spec.steps = nil
        return copy
    }
}
