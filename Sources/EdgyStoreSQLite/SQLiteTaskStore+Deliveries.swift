import EdgyStore
import Foundation
import GRDB

/// Webhook deliveries: a row per task with a callback, inserted with the task, deleted with it
/// (ON DELETE CASCADE). A claim is one write transaction, so two hosts never lease one delivery.
extension SQLiteTaskStore: DeliveryStore {
    public func claimDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        // Asked twice a second by every daemon: a read first, so that an idle poll never takes the
        // write lock the workers' transactions need.
        let anyDue = try await pool.read { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 " + Self.dueDeliveries + " LIMIT 1"), arguments: [now.micros, now.micros]) != nil
        }
        guard anyDue else { return [] }
        return try await transaction { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT d.task_id, d.tenant, d.url, d.secret, d.state, d.attempts, d.next_at \(Self.dueDeliveries)
                ORDER BY d.next_at LIMIT ?
                """), arguments: [now.micros, now.micros, limit])
            let lease = try db.cachedStatement(sql: "UPDATE deliveries SET lease_until = ? WHERE task_id = ?")
            return try rows.map { row in
                try lease.execute(arguments: [leaseUntil.micros, row[0] as String])
                return Self.delivery(row)
            }
        }
    }

    public func recordDelivery(taskID: UUID, attempt: DeliveryAttempt, state: DeliveryState, nextAttemptAt: Date?) async throws {
        try await transaction { db in
            guard let text = try String.fetchOne(db.cachedStatement(sql: "SELECT attempts FROM deliveries WHERE task_id = ?"),
                                                 arguments: [taskID.uuidString]) else { return }
            let attempts = DeliveryAttemptsJSON.decode(text) + [attempt]
            try db.cachedStatement(sql: """
                UPDATE deliveries SET attempts = ?, state = ?, next_at = ?, lease_until = NULL WHERE task_id = ?
                """).execute(arguments: [DeliveryAttemptsJSON.encode(attempts), state.rawValue, nextAttemptAt?.micros, taskID.uuidString])
        }
    }

    public func delivery(taskID: UUID) async throws -> WebhookDelivery? {
        try await pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT task_id, tenant, url, secret, state, attempts, next_at FROM deliveries WHERE task_id = ?
                """), arguments: [taskID.uuidString]).map(Self.delivery)
        }
    }

    /// Pending deliveries of finished tasks whose next try is due and whose lease is free (arguments: now, now).
    private static let dueDeliveries = """
        FROM deliveries d JOIN tasks t ON t.id = d.task_id
        WHERE d.state = 'pending' AND t.status IN ('succeeded', 'failed', 'cancelled')
          AND (d.next_at IS NULL OR d.next_at <= ?) AND (d.lease_until IS NULL OR d.lease_until <= ?)
        """

    private static func delivery(_ row: Row) -> WebhookDelivery {
        WebhookDelivery(
            taskID: UUID(uuidString: row[0]) ?? UUID(), tenant: row[1], url: row[2], secret: row[3],
            state: DeliveryState(rawValue: row[4]) ?? .failed, attempts: DeliveryAttemptsJSON.decode(row[5]),
            nextAttemptAt: (row[6] as Int64?).map { Date(micros: $0) })
    }
}
