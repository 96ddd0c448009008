import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import GRDB
import Synchronization

/// The embedded store for one host: one SQLite file in WAL mode, written through a
/// GRDB `DatabasePool` (one writer connection, concurrent readers).
///
/// Every operation that changes a task is one `BEGIN IMMEDIATE` transaction, so SQLite
/// serializes it against every other writer, in this process and in any other that opens the
/// same file: two claims never see the same queued task. Leases live in the `tasks` row
/// (`lease_owner`, `lease_attempt`, `lease_expires_at`), with the same semantics a PostgreSQL
/// store implements with `FOR UPDATE SKIP LOCKED`.
///
/// Small blobs' bytes are in a second file, `edgy-blobs.sqlite`, attached to every connection.
///
/// Times are kept in microseconds since the epoch: a `Date` read back is the one written,
/// rounded to the microsecond.
public final class SQLiteTaskStore: TaskStore, TokenStore, Sendable {
    let pool: DatabasePool
    /// The bytes of blobs; their rows are in the database.
    let blobFiles: BlobDirectory
    /// The database file, and how every connection to it is opened (for the checkpointer's own).
    let path: String
    let configuration: Configuration
    /// Checkpoints `checkpointContinuously` has completed.
    let checkpointsDone = Atomic<Int>(0)
    /// A read-only connection of its own for the point reads made on the calling thread
    /// (`readOnCallingThread`), outside the pool's readers. An async read holds its pooled reader
    /// until its task resumes, on an executor thread: a thread that blocked there waiting for a
    /// free reader could be the one those tasks need, and wait forever. This connection is only
    /// ever held by a thread that is running its read to the end.
    let callingThreadReader: DatabaseQueue

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Opening the same file again is safe: migrations already applied are skipped. Blobs' bytes
    /// live in `blobDirectory` (default: `blobs` beside the database).
    public init(path: String, blobDirectory: String? = nil) throws {
        blobFiles = try BlobDirectory(path: blobDirectory ?? URL(fileURLWithPath: path).deletingLastPathComponent().path + "/blobs")
        blobFiles.removeStaged()
        var config = Configuration()
        config.label = "edgy-store"
        config.busyMode = .timeout(10)
        let blobBytesPath = Self.blobBytesPath(beside: path)
        config.prepareDatabase { db in
            // WAL is set by DatabasePool. With WAL, NORMAL keeps every committed transaction
            // across a process kill; a power loss may undo the last few commits, never corrupt
            // the file. It saves an fsync per commit.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Savepoints (a create that also claims) and statements that may need undoing keep the
            // pages they change in a statement journal. By default a journal past 64 KiB spills to
            // a file in /var/tmp: a create-and-claim opened one and wrote 27 pages to it. These
            // journals last one transaction, so memory holds them.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // Small blobs' bytes live in a database of their own, attached to every connection so
            // that one transaction still covers a blob's row and its bytes. Its 64 KiB pages take
            // a 10 KiB blob in one page where 4 KiB pages need three, and an attempt's hundred
            // files in a sixth of the WAL writes. (The page size only takes on a new file.)
            try db.execute(sql: "ATTACH DATABASE ? AS blobdata", arguments: [blobBytesPath])
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA blobdata.page_size = 65536")
                try db.execute(sql: "PRAGMA blobdata.journal_mode = WAL")
            }
            try db.execute(sql: "PRAGMA blobdata.synchronous = NORMAL")
        }
        self.path = path
        configuration = config
        pool = try DatabasePool(path: path, configuration: config)
        try SQLiteSchema.migrator.migrate(pool)
        var readOnly = config
        readOnly.readonly = true
        readOnly.label = "edgy-store.calling-thread-reader"
        callingThreadReader = try DatabaseQueue(path: path, configuration: readOnly)
    }

    /// `edgy.sqlite` → `edgy-blobs.sqlite`, in the same directory.
    static func blobBytesPath(beside path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-blobs.sqlite").path
    }

    /// Closes the database at a graceful shutdown, after copying the WAL into the database file
    /// (and truncating it). Every later call throws. Dropping the store without closing it
    /// loses nothing; the next open replays the WAL.
    public func close() throws {
        // Best effort: another process reading the file may hold the checkpoint back, which
        // costs nothing but WAL size.
        _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate, on: nil) }  // every attached database
        try callingThreadReader.close()
        try pool.close()
    }

    // MARK: - Tasks

    public func create(_ task: TaskRecord, limits: QueueLimits, callback: TaskCallback?) async throws {
        let insert = try TaskInsert(task)
        try await insertTransaction(insert) { db in try Self.insert(db, insert, limits: limits, callback: callback) }
    }

    /// A task's columns and attempts, encoded before the write lock is taken.
    struct TaskInsert: Sendable {
        let row: TaskColumns
        let attempts: [AttemptColumns]
        var task: TaskRecord { row.task }

        init(_ task: TaskRecord) throws {
            row = try TaskColumns(task)
            attempts = try task.attempts.map { try AttemptColumns($0) }
        }

        /// The record as `fetchTask` reads it back (times at the stored precision); nil for a
        /// task inserted with attempts, which is read back instead.
        var asStored: TaskRecord? {
            guard task.attempts.isEmpty else { return nil }
            var stored = task
            stored.createdAt = StoreTime.rounded(task.createdAt)
            stored.updatedAt = StoreTime.rounded(task.updatedAt)
            stored.notBefore = StoreTime.rounded(task.notBefore)
            stored.finishedAt = task.finishedAt.map(StoreTime.rounded)
            return stored
        }
    }

    /// Inserts the task after checking the queue's and tenant's limits. With `lease`, the task is
    /// inserted as that claim leaves it, with its `queued` event; the caller records the start.
    static func insert(
        _ db: Database, _ insert: TaskInsert, limits: QueueLimits, callback: TaskCallback?, lease: TaskColumns.Lease? = nil
    ) throws {
        let task = insert.task, row = insert.row, attempts = insert.attempts
        let id = task.id.uuidString
        let files = task.spec.files
        if try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM tasks WHERE id = ?"), arguments: [id]) != nil {
            throw StoreError(.duplicateID, "a task with id \(task.id) exists")
        }
        // Counting stops at the limit, so a check costs at most `max` index entries.
        if let max = limits.maxQueued {
            let queued = try Int.fetchOne(db.cachedStatement(sql: """
                SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE status = 'queued' LIMIT ?)
                """), arguments: [max]) ?? 0
            if queued >= max { throw StoreError(.queueFull, "the queue is full (\(max) tasks queued)") }
        }
        for (index, file) in files.enumerated() {
            guard let sha256 = file.blob else { continue }
            guard try Self.tenantReferences(db, sha256: sha256, tenant: task.tenant) else {
                throw StoreError.blobNotFound(sha256, field: "files[\(index)].blob")
            }
        }
        if limits.hasTenantLimits {
            let usage = try Self.tenantUsage(db, tenant: task.tenant)
            if let violation = limits.tenantViolation(task, queued: usage.queued, stored: usage.stored, bytes: usage.bytes) {
                throw violation
            }
        }
        try db.cachedStatement(sql: lease == nil ? TaskColumns.insert : TaskColumns.startedInsert)
            .execute(arguments: row.insertArguments(lease: lease))
        let insertFile = try db.cachedStatement(sql: "INSERT INTO task_files (task_id, position, path, mode, contents, blob) VALUES (?, ?, ?, ?, ?, ?)")
        for (position, file) in files.enumerated() {
            try insertFile.execute(arguments: [id, position, file.path, Int64(file.mode), Data(file.contents), file.blob])
        }
        let referBlob = try db.cachedStatement(sql: "INSERT OR IGNORE INTO task_blobs (task_id, sha256, tenant) VALUES (?, ?, ?)")
        for sha256 in Set(files.compactMap(\.blob)) {
            try referBlob.execute(arguments: [id, sha256, task.tenant])
        }
        let insertAttempt = try db.cachedStatement(sql: """
            INSERT INTO attempts (task_id, number, worker, started_at, finished_at, outcome, report) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for attempt in attempts {
            try insertAttempt.execute(arguments: [id] + attempt.arguments)
        }
        if let callback {
            try db.cachedStatement(sql: """
                INSERT INTO deliveries (task_id, tenant, url, secret, state, attempts) VALUES (?, ?, ?, ?, 'pending', '[]')
                """).execute(arguments: [id, task.tenant, callback.url, callback.secret])
        }
        try Self.recordEvent(db, id, .status, attempt: nil, task.status.rawValue, at: row.createdAt)
    }

    public func task(id: UUID) async throws -> TaskRecord? {
        try await pool.read { db in try Self.fetchTask(db, id: id.uuidString) }
    }

    public func taskSummary(id: UUID) async throws -> TaskRecord? {
        try await pool.read { db in try Self.fetchTask(db, id: id.uuidString, summary: true) }
    }

    public func list(_ query: TaskQuery) async throws -> TaskPage {
        // The filter clauses are fixed text; every value is a bound argument.
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let tenant = query.tenant { conditions.append("tenant = ?"); arguments += [tenant] }
        if let status = query.status { conditions.append("status = ?"); arguments += [status.rawValue] }
        if let policy = query.policy { conditions.append("policy = ?"); arguments += [policy] }
        if let name = query.name { conditions.append("name = ?"); arguments += [name] }
        if let cursor = query.cursor.flatMap(TaskCursor.init(encoded:)) {
            let micros = cursor.createdAt.micros
            // A row value, so the index on (…, created_at, id) is searched from the cursor on.
            conditions.append("(created_at, id) < (?, ?)")
            arguments += [micros, cursor.id.uuidString]
        }
        let limit = max(query.limit, 0)
        arguments += [limit + 1]
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let columns = query.summaries ? TaskColumns.summarySelect : TaskColumns.select
        let sql = "SELECT \(columns) FROM tasks \(whereClause) ORDER BY created_at DESC, id DESC LIMIT ?"
        let finalArguments = arguments
        let summaries = query.summaries
        return try await pool.read { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments)
            let tasks = try Self.decodeTasks(db, rows: Array(rows.prefix(limit)), summary: summaries)
            let next = rows.count > limit ? tasks.last.map { TaskCursor(createdAt: $0.createdAt, id: $0.id).encoded } : nil
            return TaskPage(tasks: tasks, nextCursor: next)
        }
    }

    public func activeCounts(tenant: String?) async throws -> (queued: Int, running: Int) {
        let counts = try await pool.read { db -> [String: Int] in
            let rows: [Row]
            if let tenant {
                rows = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT status, COUNT(*) FROM tasks WHERE tenant = ? AND status IN ('queued', 'running') GROUP BY status
                    """), arguments: [tenant])
            } else {
                rows = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT status, COUNT(*) FROM tasks WHERE status IN ('queued', 'running') GROUP BY status
                    """))
            }
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as Int) })
        }
        return (counts["queued"] ?? 0, counts["running"] ?? 0)
    }

    public func tenantUsage(tenant: String) async throws -> TenantUsage {
        try await pool.read { db in try Self.tenantUsage(db, tenant: tenant) }
    }

    static func tenantUsage(_ db: Database, tenant: String) throws -> TenantUsage {
        let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT queued, stored, bytes FROM tenant_usage WHERE tenant = ?"), arguments: [tenant])
        let blobBytes = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT COALESCE(SUM(size), 0) FROM blobs WHERE sha256 IN
                (SELECT sha256 FROM blob_uploads WHERE tenant = ? UNION SELECT sha256 FROM task_blobs WHERE tenant = ?)
            """), arguments: [tenant, tenant]) ?? 0
        guard let row else { return TenantUsage(queued: 0, stored: 0, bytes: blobBytes) }
        return TenantUsage(queued: row[0], stored: row[1], bytes: (row[2] as Int64) + blobBytes)
    }

    public func delete(id: UUID) async throws -> Bool {
        // Files, attempts and events go with the task (ON DELETE CASCADE); so does the lease.
        try await transaction { db in
            try db.cachedStatement(sql: "DELETE FROM tasks WHERE id = ?").execute(arguments: [id.uuidString])
            return db.changesCount > 0
        }
    }

    // MARK: - Transactions

    /// A read on the calling thread, on `callingThreadReader` (libdispatch runs it inline when no
    /// other thread is reading there). Only for point lookups, which take less than a thread hop.
    func readOnCallingThread<T>(_ body: (Database) throws -> T) throws -> T {
        try callingThreadReader.read(body)
    }

    /// One `BEGIN IMMEDIATE` transaction: the write lock is taken before the first read, so a
    /// read-then-write (a claim, a reclaim) never interleaves with another writer, in this
    /// process or another. (GRDB's `write` does the same; this says so where it matters.)
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in try Self.immediate(db, body) }
    }

    /// `transaction`, run on the calling thread (GRDB's blocking write: libdispatch runs it inline
    /// when the writer is free) instead of hopping to the writer's queue and back, about 80 µs.
    /// Only for the short transactions every task makes on its way (the create of a small task,
    /// with its claim when a worker is idle; a busy worker's claim; the finish): the caller's
    /// thread waits while another write holds the lock.
    func transactionOnCallingThread<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in try Self.immediate(db, body) }
    }

    /// The transaction that inserts `insert`: on the calling thread when the task is small, as
    /// nearly every task is; a large one (files and stdin over `inlineInsertBytes`) is written on
    /// the writer's queue instead, so that a client's large tasks do not hold Swift's few pool
    /// threads, which serve every other request meanwhile, while they are written.
    func insertTransaction<T: Sendable>(_ insert: TaskInsert, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if insert.task.storedBytes <= Self.inlineInsertBytes { return try transactionOnCallingThread(body) }
        return try await transaction(body)
    }

    static let inlineInsertBytes: Int64 = 64 << 10

    private static func immediate<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db)
            return .commit
        }
        guard let result else { throw SQLiteStoreError("a transaction committed without a result") }
        return result
    }
}
