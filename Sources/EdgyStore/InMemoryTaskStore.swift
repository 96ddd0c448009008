import EdgyModel
import Foundation

/// A `TaskStore` in memory: the reference for the contract suite and a fast store for API tests.
/// Not durable.
public actor InMemoryTaskStore: TaskStore {
    private struct Lease {
        var worker: String
        var attempt: Int
        var expiresAt: Date
    }

    private var tasks: [UUID: TaskRecord] = [:]
    private var leases: [UUID: Lease] = [:]
    private var eventLog: [UUID: [TaskEvent]] = [:]
    private var nextSequence: Int64 = 1
    /// The turn at which each tenant was last served a claim (fair claiming); absent is never.
    private var lastServed: [String: Int64] = [:]
    private var nextTurn: Int64 = 1
    /// Blobs by sha256, uploads by tenant, and the blobs tasks' attempts collected.
    private var blobs: [String: (bytes: [UInt8], createdAt: Date)] = [:]
    private var uploads: [String: [String: Date]] = [:]
    private var taskOutputs: [UUID: Set<String>] = [:]
    private var deliveries: [UUID: (delivery: WebhookDelivery, leaseUntil: Date?)] = [:]

    public init() {}

    private func record(_ id: UUID, _ kind: TaskEvent.Kind, attempt: Int?, _ data: String, at: Date) {
        eventLog[id, default: []].append(TaskEvent(sequence: nextSequence, taskID: id, kind: kind, attempt: attempt, data: data, at: at))
        nextSequence += 1
    }

    public func create(_ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?) async throws {
        guard tasks[task.id] == nil else { throw StoreError(.duplicateID, "a task with id \(task.id) exists") }
        let queued = tasks.values.filter { $0.status == .queued }
        if let max = limits.maxQueued, queued.count >= max {
            throw StoreError(.queueFull, "the queue is full (\(max) tasks queued)")
        }
        for (index, file) in task.spec.files.enumerated() {
            if let sha256 = file.blob, !blobsReferenced(by: task.tenant).contains(sha256) {
                throw StoreError.blobNotFound(sha256, field: "files[\(index)].blob")
            }
        }
        if limits.hasTenantLimits {
            let mine = tasks.values.filter { $0.tenant == task.tenant }
            let bytes = mine.reduce(Int64(0)) { $0 + storedBytes($1) } + blobBytes(of: task.tenant)
            if let violation = limits.tenantViolation(task, queued: mine.filter { $0.status == .queued }.count, stored: mine.count, bytes: bytes) {
                throw violation
            }
        }
        tasks[task.id] = task
        if let callback {
            deliveries[task.id] = (WebhookDelivery(taskID: task.id, tenant: task.tenant, url: callback.url, secret: callback.secret), nil)
        }
        record(task.id, .status, attempt: nil, task.status.rawValue, at: task.createdAt)
    }

    public func task(id: UUID) async throws -> TaskRecord? { tasks[id] }

    public func taskSummary(id: UUID) async throws -> TaskRecord? { tasks[id]?.summary }

    /// The record's bytes and its output events'.
    private func storedBytes(_ task: TaskRecord) -> Int64 {
        task.storedBytes + (eventLog[task.id] ?? []).reduce(Int64(0)) { $0 + ($1.kind == .status ? 0 : Int64($1.data.utf8.count)) }
    }

    public func tenantUsage(tenant: String) async throws -> TenantUsage {
        let mine = tasks.values.filter { $0.tenant == tenant }
        return TenantUsage(
            queued: mine.filter { $0.status == .queued }.count, stored: mine.count,
            bytes: mine.reduce(Int64(0)) { $0 + storedBytes($1) } + blobBytes(of: tenant))
    }

    public func list(_ query: TaskQuery) async throws -> TaskPage {
        var matching = tasks.values.filter { task in
            (query.tenant == nil || task.tenant == query.tenant)
                && (query.status == nil || task.status == query.status)
                && (query.policy == nil || task.spec.policy == query.policy)
                && (query.name == nil || task.spec.name == query.name)
        }
        // Compared at microsecond precision, the precision of cursors (and of databases).
        let key = { (task: TaskRecord) in (TaskCursor.micros(task.createdAt), task.id.uuidString) }
        matching.sort { key($0) > key($1) }
        if let cursor = query.cursor.flatMap(TaskCursor.init(encoded:)) {
            matching = matching.filter { key($0) < (TaskCursor.micros(cursor.createdAt), cursor.id.uuidString) }
        }
        let page = Array(matching.prefix(max(query.limit, 0)))
        let next = matching.count > page.count ? page.last.map { TaskCursor(createdAt: $0.createdAt, id: $0.id).encoded } : nil
        return TaskPage(tasks: query.summaries ? page.map(\.summary) : page, nextCursor: next)
    }

    public func activeCounts(tenant: String?) async throws -> (queued: Int, running: Int) {
        let mine = tasks.values.filter { tenant == nil || $0.tenant == tenant }
        return (mine.filter { $0.status == .queued }.count, mine.filter { $0.status == .running }.count)
    }

    public func requestCancel(id: UUID, now: Date) async throws -> TaskRecord? {
        guard var task = tasks[id] else { return nil }
        if task.requestCancel(now: now) == .cancelled {
            record(id, .status, attempt: nil, TaskStatus.cancelled.rawValue, at: now)
        }
        tasks[id] = task
        return task
    }

    public func delete(id: UUID) async throws -> Bool {
        leases[id] = nil
        eventLog[id] = nil
        taskOutputs[id] = nil
        deliveries[id] = nil
        return tasks.removeValue(forKey: id) != nil
    }

    public func claim(worker: String, leaseDuration: Duration, now: Date, maxRunningPerTenant: Int?) async throws -> ClaimedTask? {
        var full: Set<String> = []
        if let maxRunningPerTenant {
            let running = Dictionary(grouping: tasks.values.filter { $0.status == .running }, by: \.tenant)
            full = Set(running.filter { $0.value.count >= maxRunningPerTenant }.keys)
        }
        // The least recently served tenant first, then its oldest task.
        let turn = { (task: TaskRecord) in self.lastServed[task.tenant] ?? 0 }
        let candidate = tasks.values
            .filter { $0.status == .queued && $0.notBefore <= now && !full.contains($0.tenant) }
            .min { (turn($0), $0.notBefore, $0.createdAt, $0.id.uuidString) < (turn($1), $1.notBefore, $1.createdAt, $1.id.uuidString) }
        guard var task = candidate else { return nil }
        lastServed[task.tenant] = nextTurn
        nextTurn += 1
        let attempt = task.attempts.count + 1
        task.start(attempt: attempt, worker: worker, now: now)
        tasks[task.id] = task
        leases[task.id] = Lease(worker: worker, attempt: attempt, expiresAt: now.addingTimeInterval(leaseDuration.seconds))
        record(task.id, .status, attempt: attempt, TaskStatus.running.rawValue, at: now)
        return ClaimedTask(task: task, attempt: attempt)
    }

    public func renewLease(taskID: UUID, attempt: Int, worker: String, leaseDuration: Duration, now: Date) async throws -> LeaseStatus {
        guard let lease = leases[taskID], lease.worker == worker, lease.attempt == attempt, let task = tasks[taskID] else {
            return .lost
        }
        leases[taskID]?.expiresAt = now.addingTimeInterval(leaseDuration.seconds)
        return .held(cancelRequested: task.cancelRequested)
    }

    public func finishAttempt(
        taskID: UUID, attempt: Int, worker: String, outcome: Outcome, report: AttemptReport?, reportJSON: [UInt8]?,
        disposition: AttemptDisposition, now: Date
    ) async throws -> Bool {
        guard let lease = leases[taskID], lease.worker == worker, lease.attempt == attempt, var task = tasks[taskID],
              task.finish(attempt: attempt, outcome: outcome, report: report, disposition: disposition, now: now)
        else { return false }
        tasks[taskID] = task
        leases[taskID] = nil
        record(taskID, .status, attempt: attempt, task.status.rawValue, at: now)
        return true
    }

    public func reclaimLeases(expiredBefore now: Date, ownedBy worker: String?, retryDelay: Duration) async throws -> [UUID] {
        var reclaimed: [UUID] = []
        for (id, lease) in leases where lease.expiresAt < now || (worker != nil && lease.worker == worker) {
            leases[id] = nil
            guard var task = tasks[id] else { continue }
            task.loseLease(ofAttempt: lease.attempt, now: now, retryDelay: retryDelay)
            tasks[id] = task
            record(id, .status, attempt: lease.attempt, task.status.rawValue, at: now)
            reclaimed.append(id)
        }
        return reclaimed
    }

    public func appendOutput(taskID: UUID, attempt: Int, kind: TaskEvent.Kind, data: String, now: Date) async throws {
        guard tasks[taskID] != nil else { return }
        record(taskID, kind, attempt: attempt, TaskEvent.storable(data), at: now)
    }

    public func events(taskID: UUID, after sequence: Int64, limit: Int) async throws -> [TaskEvent] {
        Array((eventLog[taskID] ?? []).filter { $0.sequence > sequence }.prefix(limit))
    }

    public func purgeFinished(before date: Date) async throws -> Int {
        let old = tasks.values.filter { $0.status.isFinished && ($0.finishedAt ?? $0.updatedAt) < date }.map(\.id)
        for id in old {
            tasks[id] = nil
            eventLog[id] = nil
            taskOutputs[id] = nil
            deliveries[id] = nil
        }
        return old.count
    }
}

extension InMemoryTaskStore: BlobStore {
    private func taskBlobs(_ task: TaskRecord) -> Set<String> {
        Set(task.spec.files.compactMap(\.blob)).union(taskOutputs[task.id] ?? [])
    }

    private func blobsReferenced(by tenant: String) -> Set<String> {
        var referenced = Set(uploads[tenant]?.keys ?? [:].keys)
        for task in tasks.values where task.tenant == tenant { referenced.formUnion(taskBlobs(task)) }
        return referenced
    }

    private func blobBytes(of tenant: String) -> Int64 {
        blobsReferenced(by: tenant).reduce(Int64(0)) { $0 + Int64(blobs[$1]?.bytes.count ?? 0) }
    }

    public func putUpload(sha256: String, bytes: [UInt8], tenant: String, maxBytes: Int64?, now: Date) async throws -> (blob: StoredBlob, created: Bool) {
        let referenced = blobsReferenced(by: tenant)
        if let maxBytes, !referenced.contains(sha256) {
            let usage = try await tenantUsage(tenant: tenant).bytes
            if let violation = StoreError.blobQuota(tenant: tenant, usage: usage, adding: Int64(bytes.count), max: maxBytes) { throw violation }
        }
        if blobs[sha256] == nil { blobs[sha256] = (bytes, now) }
        let created = uploads[tenant]?[sha256] == nil
        if created { uploads[tenant, default: [:]][sha256] = now }
        let stored = blobs[sha256]!
        return (StoredBlob(sha256: sha256, size: Int64(stored.bytes.count), createdAt: stored.createdAt), created)
    }

    public func blob(sha256: String, tenant: String) async throws -> StoredBlob? {
        guard let stored = blobs[sha256], blobsReferenced(by: tenant).contains(sha256) else { return nil }
        return StoredBlob(sha256: sha256, size: Int64(stored.bytes.count), createdAt: stored.createdAt)
    }

    public func blobContents(sha256: String) async throws -> [UInt8]? {
        guard let stored = blobs[sha256] else { return nil }
        guard BlobDigest.sha256Hex(stored.bytes) == sha256 else { throw BlobCorruptedError(sha256: sha256) }
        return stored.bytes
    }

    public func deleteUpload(sha256: String, tenant: String) async throws -> Bool {
        uploads[tenant]?.removeValue(forKey: sha256) != nil
    }

    public func storeOutputs(taskID: UUID, tenant: String, contents: [String: [UInt8]], now: Date) async throws {
        for (sha256, bytes) in contents where blobs[sha256] == nil { blobs[sha256] = (bytes, now) }
        guard tasks[taskID] != nil else { return }
        taskOutputs[taskID, default: []].formUnion(contents.keys)
    }

    public func collectGarbage(uploadsBefore: Date) async throws -> Int {
        for tenant in uploads.keys { uploads[tenant] = uploads[tenant]?.filter { $0.value >= uploadsBefore } }
        var live = Set<String>()
        for tenantUploads in uploads.values { live.formUnion(tenantUploads.keys) }
        for task in tasks.values { live.formUnion(taskBlobs(task)) }
        let dead = blobs.keys.filter { !live.contains($0) }
        for sha256 in dead { blobs[sha256] = nil }
        return dead.count
    }

    /// Test hook: replaces a blob's bytes, as a disk error would.
    public func corruptBlob(sha256: String, with bytes: [UInt8]) {
        if let stored = blobs[sha256] { blobs[sha256] = (bytes, stored.createdAt) }
    }
}

/// An opaque page cursor: the last task's creation time and id.
public struct TaskCursor: Sendable, Hashable {
    public var createdAt: Date
    public var id: UUID

    public init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    public init?(encoded: String) {
        guard let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: "|")
        // A time outside what a store can hold is not one a server gave out.
        guard parts.count == 2, let micros = Int64(parts[0]), StoreTime.isValid(micros: micros),
              let id = UUID(uuidString: String(parts[1]))
        else { return nil }
        self.createdAt = StoreTime.date(micros: micros)
        self.id = id
    }

    public var encoded: String {
        Data("\(Self.micros(createdAt))|\(id.uuidString)".utf8).base64EncodedString()
    }

    /// Microseconds since the epoch: the precision of cursors and stored times.
    public static func micros(_ date: Date) -> Int64 { StoreTime.micros(date) }
}

extension InMemoryTaskStore: DeliveryStore {
    public func claimDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        let due = deliveries.values.filter { entry in
            entry.delivery.state == .pending && tasks[entry.delivery.taskID]?.status.isFinished == true
                && (entry.delivery.nextAttemptAt ?? .distantPast) <= now && (entry.leaseUntil ?? .distantPast) <= now
        }.map(\.delivery).sorted { ($0.nextAttemptAt ?? .distantPast) < ($1.nextAttemptAt ?? .distantPast) }.prefix(limit)
        for delivery in due { deliveries[delivery.taskID]?.leaseUntil = leaseUntil }
        return Array(due)
    }

    public func recordDelivery(taskID: UUID, attempt: DeliveryAttempt, state: DeliveryState, nextAttemptAt: Date?) async throws {
        guard var entry = deliveries[taskID] else { return }
        entry.delivery.attempts.append(attempt)
        entry.delivery.state = state
        entry.delivery.nextAttemptAt = nextAttemptAt
        entry.leaseUntil = nil
        deliveries[taskID] = entry
    }

    public func delivery(taskID: UUID) async throws -> WebhookDelivery? { deliveries[taskID]?.delivery }
}
