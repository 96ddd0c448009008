import EdgyModel
import Foundation

/// Why a store refused an operation. Infrastructure faults (the database is gone) are thrown as
/// the implementation's own errors.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The queue holds as many queued tasks as it may (globally or for the tenant).
        case queueFull = "queue_full"
        case duplicateID = "duplicate_id"
        /// The tenant has used up a quota of what it may keep stored (`quota` names it).
        case quotaExceeded = "quota_exceeded"
        /// A task refers to a blob its tenant does not hold (`field` names the file).
        case blobNotFound = "blob_not_found"
    }

    public var code: Code
    public var message: String
    /// The quota used up, as configured: `tenant_max_queued`, `tenant_max_stored`, `tenant_max_bytes`.
    public var quota: String?
    /// The request field the error is about (`files[2].blob`).
    public var field: String?

    public init(_ code: Code, _ message: String, quota: String? = nil, field: String? = nil) {
        self.code = code
        self.message = message
        self.quota = quota
        self.field = field
    }

    public static func blobNotFound(_ sha256: String, field: String) -> StoreError {
        StoreError(.blobNotFound, "\(field): no blob sha256:\(sha256) is stored for this tenant; upload it with POST /v1/blobs", field: field)
    }

    /// The error when `adding` bytes of a blob new to `tenant` would break its byte quota.
    public static func blobQuota(tenant: String, usage: Int64, adding: Int64, max: Int64) -> StoreError? {
        guard usage + adding > max else { return nil }
        return StoreError(
            .quotaExceeded,
            "tenant \(tenant) would store more than \(max) bytes (tenant_max_bytes; \(usage) in use, this blob \(adding)); delete some blobs or tasks, or wait for retention",
            quota: "tenant_max_bytes")
    }

    public var description: String { message }
}

/// Limits checked atomically with an insert.
public struct QueueLimits: Sendable, Hashable {
    /// Queued tasks in the whole store.
    public var maxQueued: Int?
    /// Queued tasks of the new task's tenant.
    public var maxQueuedPerTenant: Int?
    /// Tasks of the new task's tenant stored in any status (until deleted or purged).
    public var maxStoredPerTenant: Int?
    /// Bytes stored for the new task's tenant (`TaskRecord.storedBytes` of its tasks plus their
    /// output events, and the blobs it refers to, each once), the new task included.
    public var maxBytesPerTenant: Int64?

    public init(maxQueued: Int? = nil, maxQueuedPerTenant: Int? = nil, maxStoredPerTenant: Int? = nil, maxBytesPerTenant: Int64? = nil) {
        self.maxQueued = maxQueued
        self.maxQueuedPerTenant = maxQueuedPerTenant
        self.maxStoredPerTenant = maxStoredPerTenant
        self.maxBytesPerTenant = maxBytesPerTenant
    }

    /// The error for the first tenant limit that `usage` plus `task` would break, if any.
    public func tenantViolation(_ task: TaskRecord, queued: Int, stored: Int, bytes: Int64) -> StoreError? {
        if let max = maxQueuedPerTenant, queued >= max {
            return StoreError(.queueFull, "tenant \(task.tenant) has \(max) tasks queued", quota: "tenant_max_queued")
        }
        if let max = maxStoredPerTenant, stored >= max {
            return StoreError(.quotaExceeded, "tenant \(task.tenant) has \(max) tasks stored (tenant_max_stored); delete some or wait for retention", quota: "tenant_max_stored")
        }
        if let max = maxBytesPerTenant, bytes + task.storedBytes > max {
            return StoreError(.quotaExceeded, "tenant \(task.tenant) would store more than \(max) bytes (tenant_max_bytes; \(bytes) in use, this task \(task.storedBytes)); delete some tasks or wait for retention", quota: "tenant_max_bytes")
        }
        return nil
    }

    public var hasTenantLimits: Bool { maxQueuedPerTenant != nil || maxStoredPerTenant != nil || maxBytesPerTenant != nil }
}

/// What one tenant has in the store.
public struct TenantUsage: Sendable, Hashable {
    public var queued: Int
    /// Tasks in any status.
    public var stored: Int
    /// File contents, stdin, reports' output and output events of its tasks, and the blobs it
    /// refers to (uploads, tasks' files by reference and collected outputs), each counted once.
    public var bytes: Int64

    public init(queued: Int, stored: Int, bytes: Int64) {
        self.queued = queued
        self.stored = stored
        self.bytes = bytes
    }
}

/// Per-tenant quotas: defaults, and overrides for named tenants (nil fields fall back to the
/// defaults).
public struct TenantQuotas: Sendable, Hashable {
    public struct Quota: Sendable, Hashable {
        public var maxQueued: Int?
        public var maxStored: Int?
        public var maxBytes: Int64?

        public init(maxQueued: Int? = nil, maxStored: Int? = nil, maxBytes: Int64? = nil) {
            self.maxQueued = maxQueued
            self.maxStored = maxStored
            self.maxBytes = maxBytes
        }
    }

    public var defaults: Quota
    public var overrides: [String: Quota]

    public init(defaults: Quota = Quota(), overrides: [String: Quota] = [:]) {
        self.defaults = defaults
        self.overrides = overrides
    }

    public func quota(for tenant: String) -> Quota {
        guard let own = overrides[tenant] else { return defaults }
        return Quota(
            maxQueued: own.maxQueued ?? defaults.maxQueued, maxStored: own.maxStored ?? defaults.maxStored,
            maxBytes: own.maxBytes ?? defaults.maxBytes)
    }
}

/// A task a worker holds by lease, with the number of the attempt it is to run.
public struct ClaimedTask: Sendable, Hashable {
    public var task: TaskRecord
    public var attempt: Int

    public init(task: TaskRecord, attempt: Int) {
        self.task = task
        self.attempt = attempt
    }
}

/// The answer to a heartbeat.
public enum LeaseStatus: Sendable, Hashable {
    /// Still ours; `cancelRequested` tells the worker to kill the jail.
    case held(cancelRequested: Bool)
    /// Gone: expired and reclaimed, or the task was deleted. The worker kills the jail and
    /// records nothing.
    case lost
}

/// What becomes of the task when an attempt ends.
public enum AttemptDisposition: Sendable, Hashable {
    case succeeded
    case failed
    case cancelled
    /// Back to `queued`, claimable from `notBefore`.
    case retry(notBefore: Date)

    public var status: TaskStatus {
        switch self {
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        case .retry: .queued
        }
    }
}

/// Filters and a page of `list`.
public struct TaskQuery: Sendable, Hashable {
    public var tenant: String?
    public var status: TaskStatus?
    public var policy: String?
    public var name: String?
    /// At most this many tasks, newest first.
    public var limit: Int
    /// From a previous page's `nextCursor`.
    public var cursor: String?
    /// Pages of `TaskRecord.summary`: what the API lists, without the tasks' inputs.
    public var summaries = false

    public init(tenant: String? = nil, status: TaskStatus? = nil, policy: String? = nil, name: String? = nil, limit: Int = 50, cursor: String? = nil) {
        self.tenant = tenant
        self.status = status
        self.policy = policy
        self.name = name
        self.limit = limit
        self.cursor = cursor
    }
}

public struct TaskPage: Sendable, Hashable {
    public var tasks: [TaskRecord]
    /// nil on the last page.
    public var nextCursor: String?

    public init(tasks: [TaskRecord], nextCursor: String?) {
        self.tasks = tasks
        self.nextCursor = nextCursor
    }
}

/// Something that happened to a task, in order: status changes and output, for SSE.
public struct TaskEvent: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `data` is the new status (`queued`, `running`, `succeeded`, …); `attempt` is set.
        case status
        /// `data` is a chunk of the workload's output (as text).
        case stdout, stderr
        /// A multi-step task's step started or ended: `data` is a JSON object
        /// (`{"index", "name", "kind", "state", "status"?}`).
        case step
        /// One case ended: `data` is a JSON object (`{"step", "index", "verdict", "wall_ms", …}`).
        case testCase = "case"
    }

    /// Increasing per task (and in practice per store).
    public var sequence: Int64
    public var taskID: UUID
    public var kind: Kind
    public var attempt: Int?
    public var data: String
    public var at: Date

    /// `data` as stores keep it: NUL becomes U+FFFD (PostgreSQL text cannot hold it; SQLite
    /// would cut the text there). Output's exact bytes are in the attempt's report.
    public static func storable(_ data: String) -> String {
        data.contains("\u{0}") ? data.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : data
    }

    public init(sequence: Int64, taskID: UUID, kind: Kind, attempt: Int?, data: String, at: Date) {
        self.sequence = sequence
        self.taskID = taskID
        self.kind = kind
        self.attempt = attempt
        self.data = data
        self.at = at
    }
}

/// Durable tasks, the queue and its leases. Every implementation passes the same
/// contract suite. Workers coordinate only through leases held in the store, never through
/// in-process locks, so several hosts may share one store.
///
/// Status events (`queued`, `running`, `succeeded`, `failed`, `cancelled`) are recorded by the
/// store itself in `create`, `claim`, `finishAttempt`, `requestCancel` and `reclaim…`, so that every
/// host sees the same history.
public protocol TaskStore: Sendable {
    /// Inserts a new `queued` task, refusing it when `limits` are reached (`StoreError.queueFull`);
    /// with `callback`, its pending webhook delivery in the same transaction (`DeliveryStore`).
    func create(_ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?) async throws
    func task(id: UUID) async throws -> TaskRecord?
    /// `task(id:)?.summary`, without reading the inputs it leaves out: what the API answers with.
    func taskSummary(id: UUID) async throws -> TaskRecord?
    func list(_ query: TaskQuery) async throws -> TaskPage
    /// Queued and running tasks, of one tenant or all.
    func activeCounts(tenant: String?) async throws -> (queued: Int, running: Int)
    /// What a tenant has stored, as the quotas of `QueueLimits` count it. Deleting or purging
    /// tasks lowers it.
    func tenantUsage(tenant: String) async throws -> TenantUsage
    /// A queued task becomes `cancelled` at once; a running one gets `cancelRequested` (its worker
    /// kills the jail and finishes it `cancelled`); a finished one is returned unchanged.
    /// nil when there is no such task.
    func requestCancel(id: UUID, now: Date) async throws -> TaskRecord?
    /// Removes a task and its events. A running task's worker loses its lease and kills the jail.
    func delete(id: UUID) async throws -> Bool

    /// Leases a claimable task (`queued`, `notBefore <= now`) to `worker` until
    /// `now + leaseDuration`, marks it `running` and opens attempt `attempts.count + 1`.
    /// Claims are fair across tenants: the task is the oldest (by `notBefore`, then creation) of
    /// the tenant served least recently (a tenant never served first), so one tenant's backlog
    /// never starves another's; the turns live in the store, so this holds across hosts.
    /// Two concurrent claims never get the same task. With `maxRunningPerTenant`, tasks of a
    /// tenant that already has that many running are passed over (they wait, in order, until one
    /// of its attempts ends): the per-tenant running limit.
    func claim(worker: String, leaseDuration: Duration, now: Date, maxRunningPerTenant: Int?) async throws -> ClaimedTask?
    /// `create`, then `claim` for `worker`, in one transaction where the store can: how a task
    /// created while a worker of this host is idle starts without a second transaction. The claim
    /// is an ordinary one (fair across tenants, oldest first, the running limit), so it may lease an
    /// older task instead, or none. Throws only what `create` throws: a claim that fails leaves the
    /// new task queued and returns nil.
    func createAndClaim(
        _ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?, worker: String, leaseDuration: Duration, now: Date,
        maxRunningPerTenant: Int?
    ) async throws -> ClaimedTask?
    /// Extends the lease if `worker` still holds it for `attempt`.
    func renewLease(taskID: UUID, attempt: Int, worker: String, leaseDuration: Duration, now: Date) async throws -> LeaseStatus
    /// Records the attempt's end and the task's new state, if `worker` still holds the lease.
    /// Returns false (and changes nothing) when it does not. `reportJSON`, when given, is
    /// `report.json()`, already encoded by the caller.
    func finishAttempt(
        taskID: UUID, attempt: Int, worker: String, outcome: Outcome, report: AttemptReport?, reportJSON: [UInt8]?,
        disposition: AttemptDisposition, now: Date
    ) async throws -> Bool
    /// Ends every lease that expired before `now` (or, with `worker`, every lease that worker
    /// holds, for a restarted daemon): the attempt is recorded `lost`; the task is queued again
    /// from `now + retryDelay`, or `failed` when it has used `maxAttempts`. Returns the task ids.
    func reclaimLeases(expiredBefore now: Date, ownedBy worker: String?, retryDelay: Duration) async throws -> [UUID]

    /// Adds output events (status events are the store's own); `data` is kept as
    /// `TaskEvent.storable(data)`.
    func appendOutput(taskID: UUID, attempt: Int, kind: TaskEvent.Kind, data: String, now: Date) async throws
    /// Events after `sequence`, oldest first.
    func events(taskID: UUID, after sequence: Int64, limit: Int) async throws -> [TaskEvent]

    /// Deletes finished tasks that finished before `date`. Returns how many.
    func purgeFinished(before date: Date) async throws -> Int
}

extension TaskStore {
    /// Inserts a task without a webhook.
    public func create(_ task: TaskRecord, limits: QueueLimits) async throws {
        try await create(task, limits: limits, callback: nil)
    }

    /// Two transactions: for stores that cannot share one between the two.
    public func createAndClaim(
        _ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?, worker: String, leaseDuration: Duration, now: Date,
        maxRunningPerTenant: Int?
    ) async throws -> ClaimedTask? {
        try await create(task, limits: limits, callback: callback)
        return try? await claim(worker: worker, leaseDuration: leaseDuration, now: now, maxRunningPerTenant: maxRunningPerTenant)
    }

    /// A claim without a per-tenant running limit.
    public func claim(worker: String, leaseDuration: Duration, now: Date) async throws -> ClaimedTask? {
        try await claim(worker: worker, leaseDuration: leaseDuration, now: now, maxRunningPerTenant: nil)
    }
}

/// Starts new tasks on an idle worker of this process when there is one: the task is created and
/// claimed in one store transaction and handed to the worker, with no wake-up and no second claim
/// between the request and the jail. The worker pool is one.
public protocol TaskDispatcher: Sendable {
    /// Creates `task` as `TaskStore.create` does, throwing what it throws. Returns true when a
    /// local worker took this very task; false when it waits in the queue (no worker was idle, or
    /// the claim took an older task or none), and then the caller announces it as queued.
    func createAndDispatch(_ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?) async throws -> Bool
}

extension TaskStore {
    /// `finishAttempt` with the report encoded by the store.
    public func finishAttempt(
        taskID: UUID, attempt: Int, worker: String, outcome: Outcome, report: AttemptReport?,
        disposition: AttemptDisposition, now: Date
    ) async throws -> Bool {
        try await finishAttempt(
            taskID: taskID, attempt: attempt, worker: worker, outcome: outcome, report: report, reportJSON: nil,
            disposition: disposition, now: now)
    }
}
