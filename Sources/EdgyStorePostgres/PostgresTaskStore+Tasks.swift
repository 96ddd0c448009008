import EdgyModel
import EdgyStore
import Foundation
import PostgresNIO

// The TaskStore contract, matching InMemoryTaskStore. Every value is bound through PostgresQuery
// interpolation; the only `unescaped:` fragments are the constant column lists below.
extension PostgresTaskStore {
    /// The columns `decodeTask` reads, in its order.
    private static let taskColumns =
        "id, tenant, spec::text, status, created_at, updated_at, finished_at, not_before, cancel_requested, attempts::text"

    /// `taskColumns` for `TaskRecord.summary`: the spec without stdin and steps, and each file's
    /// bytes replaced by their count (`omitted_size`), so that the bytes never leave the server.
    private static let summaryColumns = """
        id, tenant, (spec || jsonb_build_object(
            'stdin', '[]'::jsonb, 'steps', 'null'::jsonb,
            'files', COALESCE((
                SELECT jsonb_agg((file - 'contents') || jsonb_build_object(
                    'contents', '', 'omitted_size', octet_length(decode(file->>'contents', 'base64'))) ORDER BY position)
                FROM jsonb_array_elements(spec->'files') WITH ORDINALITY AS files(file, position)), '[]'::jsonb)))::text,
        status, created_at, updated_at, finished_at, not_before, cancel_requested, attempts::text
        """

    private static func decodeTask(_ row: PostgresRow) throws -> TaskRecord {
        let (id, tenant, spec, status, createdAt, updatedAt, finishedAt, notBefore, cancelRequested, attempts) =
            try row.decode((UUID, String, String, String, Int64, Int64, Int64?, Int64, Bool, String).self)
        guard let status = TaskStatus(rawValue: status) else { throw PostgresStoreError("task \(id) has unknown status \(status)") }
        let decoder = JSONDecoder()
        return TaskRecord(
            id: id, tenant: tenant, spec: try decoder.decode(TaskSpec.self, from: Data(spec.utf8)), status: status,
            createdAt: Date(micros: createdAt), updatedAt: Date(micros: updatedAt), finishedAt: finishedAt.map(Date.init(micros:)),
            notBefore: Date(micros: notBefore), cancelRequested: cancelRequested,
            attempts: try decoder.decode([AttemptRecord].self, from: Data(attempts.utf8)))
    }

    private static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    /// Writes a task's mutable fields back, optionally ending its lease and recording a status
    /// event, and announces the change. One statement. With `requiredLease`, only while that
    /// lease is held: returns whether the task was written.
    @discardableResult
    private func save(
        _ task: TaskRecord, statusEventAttempt: Int?, recordStatus: Bool, dropLease: Bool,
        requiredLease: (worker: String, attempt: Int)? = nil, on connection: PostgresConnection
    ) async throws -> Bool {
        let attempts = try Self.json(task.attempts)
        let change: TaskNotifier.Change =
            task.status.isFinished ? .ended : task.status == .queued ? .queued : task.cancelRequested ? .cancelRequested : .unknown
        let rows = try await connection.query("""
            WITH u AS (
                UPDATE tasks SET status = \(task.status.rawValue), updated_at = \(task.updatedAt.micros),
                    finished_at = \(task.finishedAt?.micros), not_before = \(task.notBefore.micros),
                    cancel_requested = \(task.cancelRequested), attempts = \(attempts)::jsonb, record_bytes = \(task.storedBytes)
                WHERE id = \(task.id)
                  AND (\(requiredLease == nil)::boolean OR EXISTS (
                      SELECT 1 FROM leases WHERE task_id = \(task.id) AND worker = \(requiredLease?.worker) AND attempt = \(requiredLease?.attempt)))
                RETURNING id
            ), d AS (
                DELETE FROM leases WHERE task_id IN (SELECT id FROM u) AND \(dropLease)::boolean
            ), e AS (
                INSERT INTO events (task_id, kind, attempt, data, at)
                SELECT id, 'status', \(statusEventAttempt)::integer, \(task.status.rawValue), \(task.updatedAt.micros) FROM u
                WHERE \(recordStatus)::boolean
            )
            SELECT pg_notify(\(Self.channel), id::text || \(Self.noticeSuffix(change))) FROM u
            """, logger: logger).collect()
        return !rows.isEmpty
    }

    /// The one row of an aggregate.
    static func single(_ rows: [PostgresRow]) throws -> PostgresRow {
        guard let row = rows.first else { throw PostgresStoreError("an aggregate returned no row") }
        return row
    }

    private func lockedTask(_ id: UUID, on connection: PostgresConnection) async throws -> TaskRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id) FOR UPDATE", logger: logger
        ).collect()
        return try rows.first.map(Self.decodeTask)
    }

    // MARK: Tasks

    public func create(_ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?) async throws {
        let spec = try Self.json(task.spec)
        let attempts = try Self.json(task.attempts)
        try await transaction { connection in
            let logger = self.logger
            // Every round trip costs about as much as the work it carries: the limits are read in
            // one, and a duplicate id is caught by the insert's ON CONFLICT below.
            if limits.maxQueued != nil || limits.hasTenantLimits {
                // Serializes limited inserts, so that two hosts cannot both take the last place.
                // Its own statement: a statement's snapshot is taken before any lock it waits for.
                try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresMigrations.lockKey + 1))", logger: logger)
                let (usage, queued) = try await self.usage(tenant: task.tenant, countingQueue: limits.maxQueued != nil, on: connection)
                if let max = limits.maxQueued, let queued, queued >= max {
                    throw StoreError(.queueFull, "the queue is full (\(max) tasks queued)")
                }
                if let violation = limits.tenantViolation(task, queued: usage.queued, stored: usage.stored, bytes: usage.bytes) {
                    throw violation
                }
            }
            let inserted = try await connection.query("""
                WITH t AS (
                    INSERT INTO tasks (id, tenant, name, policy, spec, status, created_at, updated_at, finished_at,
                                       not_before, cancel_requested, max_attempts, attempts, record_bytes)
                    VALUES (\(task.id), \(task.tenant), \(task.spec.name), \(task.spec.policy), \(spec)::jsonb,
                            \(task.status.rawValue), \(task.createdAt.micros), \(task.updatedAt.micros), \(task.finishedAt?.micros),
                            \(task.notBefore.micros), \(task.cancelRequested), \(task.spec.maxAttempts), \(attempts)::jsonb,
                            \(task.storedBytes))
                    ON CONFLICT (id) DO NOTHING
                    RETURNING id
                ), e AS (
                    INSERT INTO events (task_id, kind, attempt, data, at)
                    SELECT id, 'status', NULL, \(task.status.rawValue), \(task.createdAt.micros) FROM t
                )
                SELECT pg_notify(\(Self.channel), id::text || \(Self.noticeSuffix(.queued))) FROM t
                """, logger: logger).collect()
            if inserted.isEmpty { throw StoreError(.duplicateID, "a task with id \(task.id) exists") }
            if let callback {
                try await connection.query("""
                    INSERT INTO deliveries (task_id, tenant, url, secret, state, attempts)
                    VALUES (\(task.id), \(task.tenant), \(callback.url), \(callback.secret), 'pending', '[]'::jsonb)
                    """, logger: logger)
            }
            for (index, file) in task.spec.files.enumerated() {
                guard let sha256 = file.blob else { continue }
                guard try await Self.tenantReferences(sha256: sha256, tenant: task.tenant, on: connection, logger: logger) else {
                    throw StoreError.blobNotFound(sha256, field: "files[\(index)].blob")
                }
                // The foreign key's row lock keeps garbage collection off the blob until this commits.
                try await connection.query("""
                    INSERT INTO task_blobs (task_id, sha256, tenant) VALUES (\(task.id), \(sha256), \(task.tenant))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
        }
    }

    public func task(id: UUID) async throws -> TaskRecord? {
        try await query("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id)").first.map(Self.decodeTask)
    }

    public func taskSummary(id: UUID) async throws -> TaskRecord? {
        try await query("SELECT \(unescaped: Self.summaryColumns) FROM tasks WHERE id = \(id)").first.map(Self.decodeTask)
    }

    public func list(_ query: TaskQuery) async throws -> TaskPage {
        let cursor = query.cursor.flatMap(TaskCursor.init(encoded:))
        let limit = max(query.limit, 0)
        let rows = try await self.query("""
            SELECT \(unescaped: query.summaries ? Self.summaryColumns : Self.taskColumns) FROM tasks
            WHERE (\(query.tenant)::text IS NULL OR tenant = \(query.tenant))
              AND (\(query.status?.rawValue)::text IS NULL OR status = \(query.status?.rawValue))
              AND (\(query.policy)::text IS NULL OR policy = \(query.policy))
              AND (\(query.name)::text IS NULL OR name = \(query.name))
              AND (\(cursor?.createdAt.micros)::bigint IS NULL OR (created_at, id) < (\(cursor?.createdAt.micros), \(cursor?.id)::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT \(limit + 1)
            """)
        let tasks = try rows.map(Self.decodeTask)
        let page = Array(tasks.prefix(limit))
        let next = tasks.count > page.count ? page.last.map { TaskCursor(createdAt: $0.createdAt, id: $0.id).encoded } : nil
        return TaskPage(tasks: page, nextCursor: next)
    }

    public func activeCounts(tenant: String?) async throws -> (queued: Int, running: Int) {
        let rows = try await query("""
            SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running')
            FROM tasks WHERE \(tenant)::text IS NULL OR tenant = \(tenant)
            """)
        let (queued, running) = try Self.single(rows).decode((Int64, Int64).self)
        return (Int(queued), Int(running))
    }

    public func tenantUsage(tenant: String) async throws -> TenantUsage {
        try await transaction { connection in try await self.tenantUsage(tenant: tenant, on: connection) }
    }

    func tenantUsage(tenant: String, on connection: PostgresConnection) async throws -> TenantUsage {
        try await usage(tenant: tenant, countingQueue: false, on: connection).usage
    }

    /// What the tenant's quotas count and, with `countingQueue`, the tasks queued by every tenant
    /// (the queue's limit): one round trip.
    func usage(tenant: String, countingQueue: Bool, on connection: PostgresConnection) async throws -> (usage: TenantUsage, queued: Int?) {
        // The counters (migration 9), plus the output of the tenant's running tasks, which they
        // leave out, plus the tenant's blobs. The queue's count is only evaluated when asked for.
        let rows = try await connection.query("""
            SELECT COALESCE((SELECT queued FROM tenant_usage WHERE tenant = \(tenant)), 0),
                   COALESCE((SELECT stored FROM tenant_usage WHERE tenant = \(tenant)), 0),
                   (COALESCE((SELECT bytes FROM tenant_usage WHERE tenant = \(tenant)), 0)
                    + COALESCE((SELECT sum(output_bytes) FROM tasks WHERE tenant = \(tenant) AND status = 'running'), 0)
                    + (SELECT COALESCE(sum(size), 0) FROM blobs WHERE sha256 IN
                        (SELECT sha256 FROM blob_uploads WHERE tenant = \(tenant) UNION SELECT sha256 FROM task_blobs WHERE tenant = \(tenant))))::bigint,
                   CASE WHEN \(countingQueue)::boolean THEN (SELECT count(*) FROM tasks WHERE status = 'queued') END
            """, logger: logger).collect()
        let (queued, stored, bytes, allQueued) = try Self.single(rows).decode((Int64, Int64, Int64, Int64?).self)
        return (TenantUsage(queued: Int(queued), stored: Int(stored), bytes: bytes), allQueued.map(Int.init))
    }

    public func requestCancel(id: UUID, now: Date) async throws -> TaskRecord? {
        try await transaction { connection in
            guard var task = try await self.lockedTask(id, on: connection) else { return nil }
            let effect = task.requestCancel(now: now)
            if effect != .unchanged {
                try await self.save(task, statusEventAttempt: nil, recordStatus: effect == .cancelled, dropLease: false, on: connection)
            }
            return task
        }
    }

    public func delete(id: UUID) async throws -> Bool {
        // Leases and events go with the task (ON DELETE CASCADE).
        let rows = try await query("""
            WITH d AS (DELETE FROM tasks WHERE id = \(id) RETURNING id)
            SELECT pg_notify(\(Self.channel), id::text || \(Self.noticeSuffix(.ended))) FROM d
            """)
        return !rows.isEmpty
    }

    // MARK: Leases

    public func claim(worker: String, leaseDuration: Duration, now: Date, maxRunningPerTenant: Int?) async throws -> ClaimedTask? {
        // One statement, one round trip (autocommit): pick, lock, count, turn, lease, event, notify.
        //
        // Fair claiming: the oldest claimable task of the tenant served least recently (never
        // served: 0), that no other claim holds (SKIP LOCKED: concurrent claims skip each other's
        // rows and never get the same task). The tenant's running count lives in its
        // `tenant_turns` row (a trigger takes one off when a task leaves `running`); the claim adds
        // one with ON CONFLICT DO UPDATE … WHERE running < limit, which waits for a concurrent
        // claim of the same tenant and then checks the row as that claim left it, so the limit
        // holds across hosts. When the check fails nothing is claimed, as when nothing is queued.
        let expires = now.addingTimeInterval(leaseDuration.seconds).micros
        let limit = maxRunningPerTenant.map(Int64.init)
        let rows = try await query("""
            WITH picked AS (
                SELECT id, tenant FROM tasks
                WHERE status = 'queued' AND not_before <= \(now.micros)
                  AND (\(limit)::bigint IS NULL
                       OR COALESCE((SELECT s.running FROM tenant_turns s WHERE s.tenant = tasks.tenant), 0) < \(limit)::bigint)
                ORDER BY COALESCE((SELECT s.last_served FROM tenant_turns s WHERE s.tenant = tasks.tenant), 0),
                    not_before, created_at, id
                LIMIT 1
                FOR UPDATE OF tasks SKIP LOCKED
            ), turn AS (
                INSERT INTO tenant_turns AS s (tenant, last_served, running)
                SELECT tenant, nextval('tenant_turn_seq'), 1 FROM picked
                ON CONFLICT (tenant) DO UPDATE SET last_served = EXCLUDED.last_served, running = s.running + 1
                WHERE \(limit)::bigint IS NULL OR s.running < \(limit)::bigint
                RETURNING tenant
            ), claimed AS (
                UPDATE tasks t SET status = 'running', updated_at = \(now.micros),
                    attempts = t.attempts || jsonb_build_array(jsonb_build_object(
                        'number', jsonb_array_length(t.attempts) + 1, 'worker', \(worker)::text,
                        'startedAt', \(now.timeIntervalSinceReferenceDate)::float8))
                FROM picked, turn
                WHERE t.id = picked.id AND turn.tenant = picked.tenant
                RETURNING t.*
            ), lease AS (
                INSERT INTO leases (task_id, worker, attempt, expires_at)
                SELECT id, \(worker), jsonb_array_length(attempts), \(expires) FROM claimed
                ON CONFLICT (task_id) DO UPDATE SET worker = EXCLUDED.worker, attempt = EXCLUDED.attempt, expires_at = EXCLUDED.expires_at
            ), event AS (
                INSERT INTO events (task_id, kind, attempt, data, at)
                SELECT id, 'status', jsonb_array_length(attempts), 'running', \(now.micros) FROM claimed
            )
            SELECT \(unescaped: Self.taskColumns), pg_notify(\(Self.channel), id::text || \(Self.noticeSuffix(.running))) FROM claimed
            """)
        guard let task = try rows.first.map(Self.decodeTask) else { return nil }
        return ClaimedTask(task: task, attempt: task.attempts.count)
    }

    public func renewLease(taskID: UUID, attempt: Int, worker: String, leaseDuration: Duration, now: Date) async throws -> LeaseStatus {
        let expires = now.addingTimeInterval(leaseDuration.seconds).micros
        let rows = try await query("""
            UPDATE leases l SET expires_at = \(expires)
            FROM tasks t
            WHERE l.task_id = \(taskID) AND l.worker = \(worker) AND l.attempt = \(attempt) AND t.id = l.task_id
            RETURNING t.cancel_requested
            """)
        guard let row = rows.first else { return .lost }
        return .held(cancelRequested: try row.decode(Bool.self))
    }

    public func finishAttempt(
        taskID: UUID, attempt: Int, worker: String, outcome: Outcome, report: AttemptReport?, reportJSON: [UInt8]?,
        disposition: AttemptDisposition, now: Date
    ) async throws -> Bool {
        try await transaction { connection in
            // Every change to a lease happens under its task's row lock, so the lease the save
            // checks, in a statement that starts once the lock is held, is the current one. (Not
            // in the locking read itself: a statement's snapshot predates the lock it waits for.)
            guard var task = try await self.lockedTask(taskID, on: connection),
                  task.finish(attempt: attempt, outcome: outcome, report: report, disposition: disposition, now: now)
            else { return false }
            return try await self.save(
                task, statusEventAttempt: attempt, recordStatus: true, dropLease: true, requiredLease: (worker, attempt), on: connection)
        }
    }

    public func reclaimLeases(expiredBefore now: Date, ownedBy worker: String?, retryDelay: Duration) async throws -> [UUID] {
        try await transaction { connection in
            let logger = self.logger
            // Tasks another transaction holds (a worker finishing, another host's janitor) are
            // skipped: they are not stale, or someone else is reclaiming them.
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.taskColumns) FROM tasks
                WHERE id IN (SELECT task_id FROM leases WHERE expires_at < \(now.micros) OR worker = \(worker))
                FOR UPDATE SKIP LOCKED
                """, logger: logger).collect()
            let candidates = try rows.map(Self.decodeTask)
            guard !candidates.isEmpty else { return [] }
            // Re-read the leases now that their tasks are locked.
            var leases: [UUID: (worker: String, attempt: Int, expiresAt: Int64)] = [:]
            let ids = candidates.map(\.id)
            for try await (id, owner, attempt, expiresAt) in try await connection.query("""
                SELECT task_id, worker, attempt, expires_at FROM leases WHERE task_id = ANY(\(ids))
                """, logger: logger).decode((UUID, String, Int, Int64).self) {
                leases[id] = (owner, attempt, expiresAt)
            }
            var reclaimed: [UUID] = []
            for var task in candidates {
                guard let lease = leases[task.id], lease.expiresAt < now.micros || (worker != nil && lease.worker == worker) else { continue }
                task.loseLease(ofAttempt: lease.attempt, now: now, retryDelay: retryDelay)
                try await self.save(task, statusEventAttempt: lease.attempt, recordStatus: true, dropLease: true, on: connection)
                reclaimed.append(task.id)
            }
            return reclaimed
        }
    }

    // MARK: Events

    public func appendOutput(taskID: UUID, attempt: Int, kind: TaskEvent.Kind, data: String, now: Date) async throws {
        let data = TaskEvent.storable(data)
        // The task's row lock orders this event's sequence number with every other event of the
        // task, so readers paging by sequence never skip one committed late.
        try await query("""
            WITH t AS (UPDATE tasks SET output_bytes = output_bytes + \(Int64(data.utf8.count)) WHERE id = \(taskID) RETURNING id),
            e AS (
                INSERT INTO events (task_id, kind, attempt, data, at)
                SELECT id, \(kind.rawValue), \(attempt), \(data), \(now.micros) FROM t
                RETURNING task_id
            )
            SELECT pg_notify(\(Self.channel), task_id::text || \(Self.noticeSuffix(.output))) FROM e
            """)
    }

    public func events(taskID: UUID, after sequence: Int64, limit: Int) async throws -> [TaskEvent] {
        let rows = try await query("""
            SELECT sequence, kind, attempt, data, at FROM events
            WHERE task_id = \(taskID) AND sequence > \(sequence)
            ORDER BY sequence
            LIMIT \(max(limit, 0))
            """)
        return try rows.map { row in
            let (sequence, kind, attempt, data, at) = try row.decode((Int64, String, Int?, String, Int64).self)
            guard let kind = TaskEvent.Kind(rawValue: kind) else { throw PostgresStoreError("event \(sequence) has unknown kind \(kind)") }
            return TaskEvent(sequence: sequence, taskID: taskID, kind: kind, attempt: attempt, data: data, at: Date(micros: at))
        }
    }

    public func purgeFinished(before date: Date) async throws -> Int {
        let rows = try await query("""
            WITH d AS (
                DELETE FROM tasks
                WHERE status IN ('succeeded', 'failed', 'cancelled') AND COALESCE(finished_at, updated_at) < \(date.micros)
                RETURNING id
            )
            SELECT count(*) FROM d
            """)
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }
}
