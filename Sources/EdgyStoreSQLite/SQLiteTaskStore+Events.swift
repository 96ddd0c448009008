import EdgyStore
import Foundation
import GRDB

// A task's event log (status changes and output, for SSE on any host) and the purge of old tasks.
extension SQLiteTaskStore {
    public func appendOutput(taskID: UUID, attempt: Int, kind: TaskEvent.Kind, data: String, now: Date) async throws {
        let data = TaskEvent.storable(data)
        let id = taskID.uuidString
        let at = now.micros
        try await transaction { db in
            // Output of a deleted task is dropped, as the reference store does.
            try db.cachedStatement(sql: """
                INSERT INTO events (task_id, kind, attempt, data, at)
                SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?)
                """).execute(arguments: [id, kind.rawValue, attempt, data, at, id])
            try db.cachedStatement(sql: "UPDATE tasks SET stored_bytes = stored_bytes + ? WHERE id = ?")
                .execute(arguments: [data.utf8.count, id])
        }
    }

    public func events(taskID: UUID, after sequence: Int64, limit: Int) async throws -> [TaskEvent] {
        try await pool.read { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT sequence, kind, attempt, data, at FROM events
                WHERE task_id = ? AND sequence > ? ORDER BY sequence LIMIT ?
                """), arguments: [taskID.uuidString, sequence, max(limit, 0)])
            return try rows.map { row in
                let kind: String = row[1]
                guard let kind = TaskEvent.Kind(rawValue: kind) else { throw SQLiteStoreError("unknown event kind \(kind)") }
                return TaskEvent(sequence: row[0], taskID: taskID, kind: kind, attempt: row[2], data: row[3], at: Date(micros: row[4]))
            }
        }
    }

    public func purgeFinished(before date: Date) async throws -> Int {
        try await purgeFinished(before: date, batch: 500)
    }

    /// Deletes `batch` tasks a transaction (about 20 ms here), so that a large purge (a backlog
    /// after downtime, a shorter retention) never holds the write lock for long: creates, claims
    /// and finishes wait for it on Swift's pool threads, which then serve nothing else.
    func purgeFinished(before date: Date, batch: Int) async throws -> Int {
        let before = date.micros
        var purged = 0
        while true {
            let deleted = try await transaction { db in
                // Files, attempts and events go with each task (ON DELETE CASCADE).
                try db.cachedStatement(sql: """
                    DELETE FROM tasks WHERE id IN (
                        SELECT id FROM tasks WHERE status IN ('succeeded', 'failed', 'cancelled')
                        AND COALESCE(finished_at, updated_at) < ? LIMIT ?)
                    """).execute(arguments: [before, batch])
                return db.changesCount
            }
            purged += deleted
            if deleted < batch { return purged }
        }
    }
}
