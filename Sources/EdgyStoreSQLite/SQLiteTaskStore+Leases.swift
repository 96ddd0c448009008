import EdgyModel
import EdgyStore
import Foundation
import GRDB

// Claims, leases and every change of a task's state. The changes themselves are `TaskRecord`'s
// (`finish`, `loseLease`, `requestCancel`), the same rules the other stores apply: each is read,
// applied and written back inside one `BEGIN IMMEDIATE` transaction.
extension SQLiteTaskStore {
    public func claim(worker: String, leaseDuration: Duration, now: Date, maxRunningPerTenant: Int?) async throws -> ClaimedTask? {
        let at = now.micros
        let expires = StoreTime.adding(at, leaseDuration.micros)
        // Most claims find nothing: an idle worker's poll, a worker back from its last task. A
        // read says so without the write lock (which a create waiting behind it would pay for);
        // a task queued after this read wakes the worker, which claims again.
        let waiting = try readOnCallingThread { db in
            try Bool.fetchOne(db.cachedStatement(sql: """
                SELECT EXISTS (SELECT 1 FROM tasks INDEXED BY tasks_claimable WHERE status = 'queued' AND not_before <= ?)
                """), arguments: [at]) ?? false
        }
        guard waiting else { return nil }
        return try transactionOnCallingThread { db in
            try Self.claimNext(db, worker: worker, at: at, expires: expires, maxRunningPerTenant: maxRunningPerTenant)
        }
    }

    public func createAndClaim(
        _ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?, worker: String, leaseDuration: Duration, now: Date,
        maxRunningPerTenant: Int?
    ) async throws -> ClaimedTask? {
        let insert = try TaskInsert(task)
        let at = now.micros
        let expires = StoreTime.adding(at, leaseDuration.micros)
        return try await insertTransaction(insert) { db in
            if var inserted = insert.asStored, inserted.status == .queued, inserted.notBefore.micros <= at,
               try Self.claimsDirectly(db, tenant: inserted.tenant, at: at, maxRunningPerTenant: maxRunningPerTenant) {
                // What `claimNext` would choose: the task goes in as its claim leaves it, so that
                // the claim's search and its rewrite of the row (four index entries) are not paid.
                let lease = TaskColumns.Lease(worker: worker, attempt: inserted.attempts.count + 1, at: at, expires: expires)
                try Self.insert(db, insert, limits: limits, callback: callback, lease: lease)
                try Self.recordStart(db, inserted.id.uuidString, tenant: inserted.tenant, lease: lease)
                inserted.start(attempt: lease.attempt, worker: worker, now: Date(micros: at))
                return ClaimedTask(task: inserted, attempt: lease.attempt)
            }
            try Self.insert(db, insert, limits: limits, callback: callback)
            let inserted = insert.asStored
            // A claim that fails rolls back to here: the task stays created, and queued.
            var claimed: ClaimedTask?
            try? db.inSavepoint {
                claimed = try Self.claimNext(
                    db, worker: worker, at: at, expires: expires, maxRunningPerTenant: maxRunningPerTenant, inserted: inserted)
                return .commit
            }
            return claimed
        }
    }

    /// Leases the next claimable task (see `claim`) inside the caller's transaction. When that is
    /// `inserted`, the task this transaction created (as stored), its record is not read back.
    static func claimNext(
        _ db: Database, worker: String, at: Int64, expires: Int64, maxRunningPerTenant: Int?, inserted: TaskRecord? = nil
    ) throws -> ClaimedTask? {
        // INDEXED BY: without statistics the planner would pick the status index and sort
        // the whole queue on every claim; the partial index hands over the oldest first.
        // Fair claiming: the least recently served tenant (never served: 0) first, then FIFO.
        guard let candidate = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT id, attempt_count, tenant FROM tasks INDEXED BY tasks_claimable
            WHERE status = 'queued' AND not_before <= ?
              AND (? IS NULL OR (SELECT count(*) FROM tasks AS r WHERE r.tenant = tasks.tenant AND r.status = 'running') < ?)
            ORDER BY COALESCE((SELECT last_served FROM tenant_turns AS s WHERE s.tenant = tasks.tenant), 0),
                not_before, created_at, id
            LIMIT 1
            """), arguments: [at, maxRunningPerTenant, maxRunningPerTenant])
        else { return nil }
        let id: String = candidate[0]
        let attempt = (candidate[1] as Int) + 1
        try db.cachedStatement(sql: """
            UPDATE tasks SET status = 'running', updated_at = ?, attempt_count = ?,
                lease_owner = ?, lease_attempt = ?, lease_expires_at = ?
            WHERE id = ?
            """).execute(arguments: [at, attempt, worker, attempt, expires, id])
        try recordStart(db, id, tenant: candidate[2], lease: TaskColumns.Lease(worker: worker, attempt: attempt, at: at, expires: expires))
        if var task = inserted, task.id.uuidString == id {
            task.start(attempt: attempt, worker: worker, now: Date(micros: at))
            return ClaimedTask(task: task, attempt: attempt)
        }
        guard let task = try Self.fetchTask(db, id: id) else { return nil }
        return ClaimedTask(task: task, attempt: attempt)
    }

    /// Whether a task of `tenant` created now would be the one `claimNext` picks: no claimable
    /// task waits, and the tenant is below its running limit.
    static func claimsDirectly(_ db: Database, tenant: String, at: Int64, maxRunningPerTenant: Int?) throws -> Bool {
        let waiting = try Bool.fetchOne(db.cachedStatement(sql: """
            SELECT EXISTS (SELECT 1 FROM tasks INDEXED BY tasks_claimable WHERE status = 'queued' AND not_before <= ?)
            """), arguments: [at]) ?? true
        guard !waiting else { return false }
        guard let maxRunningPerTenant else { return true }
        let running = try Int.fetchOne(db.cachedStatement(sql: """
            SELECT COUNT(*) FROM tasks WHERE tenant = ? AND status = 'running'
            """), arguments: [tenant]) ?? 0
        return running < maxRunningPerTenant
    }

    /// The rest of a claim, once the task's row is leased: the tenant's turn, the attempt, the event.
    static func recordStart(_ db: Database, _ id: String, tenant: String, lease: TaskColumns.Lease) throws {
        try db.cachedStatement(sql: """
            INSERT INTO tenant_turns (tenant, last_served)
            VALUES (?, (SELECT COALESCE(MAX(last_served), 0) + 1 FROM tenant_turns))
            ON CONFLICT (tenant) DO UPDATE SET last_served = excluded.last_served
            """).execute(arguments: [tenant])
        try db.cachedStatement(sql: "INSERT INTO attempts (task_id, number, worker, started_at) VALUES (?, ?, ?, ?)")
            .execute(arguments: [id, lease.attempt, lease.worker, lease.at])
        try recordEvent(db, id, .status, attempt: lease.attempt, TaskStatus.running.rawValue, at: lease.at)
    }

    public func renewLease(taskID: UUID, attempt: Int, worker: String, leaseDuration: Duration, now: Date) async throws -> LeaseStatus {
        let expires = StoreTime.adding(now.micros, leaseDuration.micros)
        return try await transaction { db in
            let cancelRequested = try Bool.fetchOne(db.cachedStatement(sql: """
                UPDATE tasks SET lease_expires_at = ?
                WHERE id = ? AND lease_owner = ? AND lease_attempt = ?
                RETURNING cancel_requested
                """), arguments: [expires, taskID.uuidString, worker, attempt])
            return cancelRequested.map { .held(cancelRequested: $0) } ?? .lost
        }
    }

    public func finishAttempt(
        taskID: UUID, attempt: Int, worker: String, outcome: Outcome, report: AttemptReport?, reportJSON: [UInt8]?,
        disposition: AttemptDisposition, now: Date
    ) async throws -> Bool {
        let id = taskID.uuidString
        // Encoded before the write lock is taken: a report may carry a megabyte of output.
        let reportJSON = try reportJSON.map { String(decoding: $0, as: UTF8.self) } ?? report.map(Self.reportText)
        let reportBytes = Int64(report.map { $0.stdout.count + $0.stderr.count } ?? 0)
        let at = now.micros
        let status = disposition.status
        // `TaskRecord.finish`, written straight into the columns it changes: a retry sets
        // not_before and leaves finished_at; any other ending sets finished_at and leaves not_before.
        let notBefore: Int64? = if case .retry(let retryAt) = disposition { retryAt.micros } else { nil }
        let finishedAt: Int64? = notBefore == nil ? at : nil
        return try transactionOnCallingThread { db in
            // A lost lease changes nothing: the lease is checked by the UPDATE, under the write lock.
            try db.cachedStatement(sql: """
                UPDATE tasks SET status = ?, updated_at = ?, finished_at = COALESCE(?, finished_at),
                    not_before = COALESCE(?, not_before), cancel_requested = 0,
                    lease_owner = NULL, lease_attempt = NULL, lease_expires_at = NULL, stored_bytes = stored_bytes + ?
                WHERE id = ? AND lease_owner = ? AND lease_attempt = ?
                """).execute(arguments: [status.rawValue, at, finishedAt, notBefore, reportBytes, id, worker, attempt])
            guard db.changesCount == 1 else { return false }
            try db.cachedStatement(sql: "UPDATE attempts SET finished_at = ?, outcome = ?, report = ? WHERE task_id = ? AND number = ?")
                .execute(arguments: [at, outcome.rawValue, reportJSON, id, attempt])
            try Self.recordEvent(db, id, .status, attempt: attempt, status.rawValue, at: at)
            return true
        }
    }

    public func reclaimLeases(expiredBefore now: Date, ownedBy worker: String?, retryDelay: Duration) async throws -> [UUID] {
        try await transaction { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT id, lease_attempt FROM tasks
                WHERE lease_owner IS NOT NULL AND (lease_expires_at < ? OR lease_owner = ?)
                ORDER BY lease_expires_at, id
                """), arguments: [now.micros, worker])
            var reclaimed: [UUID] = []
            for row in rows {
                let id: String = row[0]
                let attempt: Int = row[1]
                guard var task = try Self.fetchTask(db, id: id, withFiles: false) else { continue }
                task.loseLease(ofAttempt: attempt, now: now, retryDelay: retryDelay)
                try Self.save(db, task, endedAttempt: attempt, reportJSON: nil, dropLease: true, recordStatus: true)
                reclaimed.append(task.id)
            }
            return reclaimed
        }
    }

    public func requestCancel(id: UUID, now: Date) async throws -> TaskRecord? {
        let id = id.uuidString
        // The stored precision, so the answer equals what `task(id:)` reads back.
        let now = StoreTime.rounded(now)
        return try await transaction { db in
            guard var task = try Self.fetchTask(db, id: id) else { return nil }
            let effect = task.requestCancel(now: now)
            if effect != .unchanged {
                try Self.save(db, task, endedAttempt: nil, reportJSON: nil, dropLease: false, recordStatus: effect == .cancelled)
            }
            return task
        }
    }

    /// Writes back what a `TaskRecord` state change alters: the task's status columns, the
    /// ending of attempt `endedAttempt` (with its report, encoded by the caller), the lease when
    /// `dropLease`, and a status event when `recordStatus`.
    static func save(
        _ db: Database, _ task: TaskRecord, endedAttempt: Int?, reportJSON: String?, dropLease: Bool, recordStatus: Bool
    ) throws {
        let id = task.id.uuidString
        try db.cachedStatement(sql: """
            UPDATE tasks SET status = ?, updated_at = ?, finished_at = ?, not_before = ?, cancel_requested = ?,
                lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END,
                lease_attempt = CASE WHEN ? THEN NULL ELSE lease_attempt END,
                lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END
            WHERE id = ?
            """).execute(arguments: [
                task.status.rawValue, task.updatedAt.micros, task.finishedAt?.micros, task.notBefore.micros,
                task.cancelRequested, dropLease, dropLease, dropLease, id,
            ])
        if let endedAttempt, let ended = task.attempts.first(where: { $0.number == endedAttempt }) {
            try db.cachedStatement(sql: "UPDATE attempts SET finished_at = ?, outcome = ?, report = ? WHERE task_id = ? AND number = ?")
                .execute(arguments: [ended.finishedAt?.micros, ended.outcome?.rawValue, reportJSON, id, endedAttempt])
        }
        if recordStatus {
            try recordEvent(db, id, .status, attempt: endedAttempt, task.status.rawValue, at: task.updatedAt.micros)
        }
    }
}
