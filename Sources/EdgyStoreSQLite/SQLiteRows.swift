import EdgyAuth
import EdgyJSON
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import GRDB

// Reading and writing rows: shared by the task and token halves of the store.
extension SQLiteTaskStore {
    static func recordEvent(_ db: Database, _ id: String, _ kind: TaskEvent.Kind, attempt: Int?, _ data: String, at: Int64) throws {
        try db.cachedStatement(sql: "INSERT INTO events (task_id, kind, attempt, data, at) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [id, kind.rawValue, attempt, data, at])
    }

    /// The task `id`; without its files' contents (`files` empty) when only its state is needed;
    /// as `TaskRecord.summary` (no bytes of files, stdin or steps read) with `summary`.
    static func fetchTask(_ db: Database, id: String, withFiles: Bool = true, summary: Bool = false) throws -> TaskRecord? {
        let columns = summary ? TaskColumns.summarySelect : TaskColumns.select
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(columns) FROM tasks WHERE id = ?"), arguments: [id]) else {
            return nil
        }
        let attempts = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT task_id, number, worker, started_at, finished_at, outcome, report FROM attempts WHERE task_id = ? ORDER BY number
            """), arguments: [id])
        let files = withFiles ? try Row.fetchAll(db.cachedStatement(sql: """
            SELECT task_id, path, mode, \(summary ? TaskColumns.fileSize : "contents"), blob FROM task_files WHERE task_id = ? ORDER BY position
            """), arguments: [id]) : []
        return try decodeTask(row, attempts: attempts, files: files, summary: summary)
    }

    /// Tasks for rows of `tasks`, in the rows' order, with their attempts and files; summaries
    /// (rows of `TaskColumns.summarySelect`, files' sizes only) with `summary`.
    static func decodeTasks(_ db: Database, rows: [Row], summary: Bool = false) throws -> [TaskRecord] {
        guard !rows.isEmpty else { return [] }
        let ids = rows.map { $0[0] as String }
        // GRDB's SQL interpolation expands the array into bound placeholders.
        let attempts = try SQLRequest<Row>("""
            SELECT task_id, number, worker, started_at, finished_at, outcome, report FROM attempts
            WHERE task_id IN \(ids) ORDER BY task_id, number
            """).fetchAll(db)
        let files = try SQLRequest<Row>("""
            SELECT task_id, path, mode, \(sql: summary ? TaskColumns.fileSize : "contents"), blob FROM task_files
            WHERE task_id IN \(ids) ORDER BY task_id, position
            """).fetchAll(db)
        let attemptsByTask = Dictionary(grouping: attempts) { $0[0] as String }
        let filesByTask = Dictionary(grouping: files) { $0[0] as String }
        return try rows.map { row in
            let id: String = row[0]
            return try decodeTask(row, attempts: attemptsByTask[id] ?? [], files: filesByTask[id] ?? [], summary: summary)
        }
    }

    static func decodeTask(_ row: Row, attempts: [Row], files: [Row], summary: Bool = false) throws -> TaskRecord {
        let idText: String = row[0]
        let statusText: String = row[4]
        guard let id = UUID(uuidString: idText), let status = TaskStatus(rawValue: statusText) else {
            throw SQLiteStoreError("malformed task row \(idText)")
        }
        let command: String? = row[5]
        let stdin: Data = row[6]
        let env: String = row[7]
        let limits: String = row[8]
        let finishedAt: Int64? = row[12]
        let spec = TaskSpec(
            name: row[2], policy: row[3],
            files: files.map { file in
                let mode: Int64 = file[2]
                var taskFile: TaskFile
                if summary {
                    let size: Int64 = file[3]
                    taskFile = TaskFile(path: file[1], contents: [], mode: UInt32(truncatingIfNeeded: mode))
                    taskFile.omittedSize = Int(size)
                } else {
                    let contents: Data = file[3]
                    taskFile = TaskFile(path: file[1], contents: Array(contents), mode: UInt32(truncatingIfNeeded: mode))
                }
                taskFile.blob = file[4]
                return taskFile
            },
            command: try command.map { try unjson([String].self, $0) },
            stdin: Array(stdin), env: try unjson([String: String].self, env), limits: try unjson(LimitOverrides.self, limits),
            maxAttempts: row[9], outputs: try (row[15] as String?).map { try unjson([String].self, $0) },
            steps: try (row[16] as String?).map { try unjson([StepSpec].self, $0) })
        return TaskRecord(
            id: id, tenant: row[1], spec: spec, status: status,
            createdAt: Date(micros: row[10]), updatedAt: Date(micros: row[11]), finishedAt: finishedAt.map(Date.init(micros:)),
            notBefore: Date(micros: row[13]), cancelRequested: row[14],
            attempts: try attempts.map(decodeAttempt))
    }

    static func decodeAttempt(_ row: Row) throws -> AttemptRecord {
        let finishedAt: Int64? = row[4]
        let outcomeText: String? = row[5]
        let report: String? = row[6]
        var outcome: Outcome?
        if let outcomeText {
            guard let known = Outcome(rawValue: outcomeText) else { throw SQLiteStoreError("unknown outcome \(outcomeText)") }
            outcome = known
        }
        return AttemptRecord(
            number: row[1], worker: row[2], startedAt: Date(micros: row[3]), finishedAt: finishedAt.map(Date.init(micros:)),
            outcome: outcome, report: try report.map { try unjson(AttemptReport.self, $0) })
    }

    /// A column's JSON (sorted keys, slashes as they are), written in one pass: a new task has
    /// several such columns, and `JSONEncoder` costs a few times more per value.
    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try SortedJSON.encode(value), as: UTF8.self)
    }

    /// A report as the store keeps it: `AttemptReport.json()`, the form the API writes too.
    static func reportText(_ report: AttemptReport) throws -> String {
        String(decoding: try report.json(), as: UTF8.self)
    }

    static func unjson<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// A row the store cannot read back (a file written by something else, or a newer schema).
public struct SQLiteStoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A task's own columns, encoded before the write transaction so JSON work stays outside it.
struct TaskColumns {
    static let select = """
        id, tenant, name, policy, status, command, stdin, env, limits, max_attempts, \
        created_at, updated_at, finished_at, not_before, cancel_requested, outputs, steps
        """
    /// `select` for `TaskRecord.summary`: the same columns in the same places, stdin empty and no
    /// steps, so that their bytes are never read.
    static let summarySelect = """
        id, tenant, name, policy, status, command, X'' AS stdin, env, limits, max_attempts, \
        created_at, updated_at, finished_at, not_before, cancel_requested, outputs, NULL AS steps
        """
    /// A file's size where a summary reads it instead of its `contents`.
    static let fileSize = "COALESCE(length(contents), 0)"

    private static let insertColumns = """
        id, tenant, name, policy, status, command, stdin, env, limits, max_attempts, attempt_count, \
        created_at, updated_at, finished_at, not_before, cancel_requested, stored_bytes, outputs, steps
        """
    /// The task's insert; `insertArguments()` gives its values in order.
    static let insert = "INSERT INTO tasks (\(insertColumns)) VALUES (\(placeholders(19)))"
    /// The insert of a task already claimed, with its lease's three columns last; for
    /// `insertArguments(lease:)`.
    static let startedInsert = """
        INSERT INTO tasks (\(insertColumns), lease_owner, lease_attempt, lease_expires_at) VALUES (\(placeholders(22)))
        """

    private static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    let task: TaskRecord
    var createdAt: Int64
    /// JSON, encoded before any lock is taken.
    private let command: String?
    private let env: String
    private let limits: String
    /// JSON array, or NULL.
    private let outputs: String?
    /// JSON array, or NULL.
    private let steps: String?

    init(_ task: TaskRecord) throws {
        self.task = task
        command = try task.spec.command.map(SQLiteTaskStore.json)
        env = try SQLiteTaskStore.json(task.spec.env)
        limits = try SQLiteTaskStore.json(task.spec.limits)
        outputs = try task.spec.outputs.map(SQLiteTaskStore.json)
        steps = try task.spec.steps.map(SQLiteTaskStore.json)
        createdAt = task.createdAt.micros
    }

    /// Values for `insert`: the task as it is; or, given `lease`, for `startedInsert`: as its
    /// claim would leave it (`TaskRecord.start`), leased.
    func insertArguments(lease: Lease? = nil) -> StatementArguments {
        let spec = task.spec
        var arguments: StatementArguments = [
            task.id.uuidString, task.tenant, spec.name, spec.policy, lease == nil ? task.status.rawValue : TaskStatus.running.rawValue,
            command, Data(spec.stdin), env, limits, spec.maxAttempts, lease?.attempt ?? task.attempts.count, createdAt,
            lease?.at ?? task.updatedAt.micros, task.finishedAt?.micros, task.notBefore.micros, task.cancelRequested,
            task.storedBytes, outputs, steps,
        ]
        if let lease { arguments += [lease.worker, lease.attempt, lease.expires] }
        return arguments
    }

    /// A claim's lease: who holds it, for which attempt, from when until when (microseconds).
    struct Lease {
        var worker: String
        var attempt: Int
        var at: Int64
        var expires: Int64
    }
}

/// An attempt's columns after `task_id`.
struct AttemptColumns {
    var arguments: StatementArguments

    init(_ attempt: AttemptRecord) throws {
        arguments = [
            attempt.number, attempt.worker, attempt.startedAt.micros, attempt.finishedAt?.micros,
            attempt.outcome?.rawValue, try attempt.report.map(SQLiteTaskStore.reportText),
        ]
    }
}

extension Date {
    /// Microseconds since the epoch, as stored.
    var micros: Int64 { StoreTime.micros(self) }

    init(micros: Int64) { self = StoreTime.date(micros: micros) }
}

extension Duration {
    var micros: Int64 { StoreTime.micros(self) }
}
