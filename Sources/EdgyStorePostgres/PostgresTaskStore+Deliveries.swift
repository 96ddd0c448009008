import EdgyStore
import Foundation
import PostgresNIO

/// Webhook deliveries: a row per task with a callback, inserted with the task, deleted with it.
/// A claim leases rows with `FOR UPDATE SKIP LOCKED`, so hosts sharing the database never
/// deliver one task's webhook twice at once.
extension PostgresTaskStore: DeliveryStore {
    private static let deliveryColumns = "task_id, tenant, url, secret, state, attempts::text, next_at"

    public func claimDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        let rows = try await query("""
            UPDATE deliveries SET lease_until = \(leaseUntil.micros)
            WHERE task_id IN (
                SELECT d.task_id FROM deliveries d JOIN tasks t ON t.id = d.task_id
                WHERE d.state = 'pending' AND t.status IN ('succeeded', 'failed', 'cancelled')
                  AND (d.next_at IS NULL OR d.next_at <= \(now.micros))
                  AND (d.lease_until IS NULL OR d.lease_until <= \(now.micros))
                ORDER BY d.next_at NULLS FIRST LIMIT \(limit)
                FOR UPDATE OF d SKIP LOCKED)
            RETURNING \(unescaped: Self.deliveryColumns)
            """)
        return try rows.map(Self.delivery)
    }

    public func recordDelivery(taskID: UUID, attempt: DeliveryAttempt, state: DeliveryState, nextAttemptAt: Date?) async throws {
        let tries = DeliveryAttemptsJSON.encode([attempt])
        _ = try await query("""
            UPDATE deliveries SET attempts = attempts || \(tries)::jsonb, state = \(state.rawValue),
                next_at = \(nextAttemptAt?.micros), lease_until = NULL
            WHERE task_id = \(taskID)
            """)
    }

    public func delivery(taskID: UUID) async throws -> WebhookDelivery? {
        try await query("SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE task_id = \(taskID)").first.map(Self.delivery)
    }

    private static func delivery(_ row: PostgresRow) throws -> WebhookDelivery {
        let (id, tenant, url, secret, state, attempts, next) = try row.decode((UUID, String, String, String, String, String, Int64?).self)
        return WebhookDelivery(
            taskID: id, tenant: tenant, url: url, secret: secret, state: DeliveryState(rawValue: state) ?? .failed,
            attempts: DeliveryAttemptsJSON.decode(attempts), nextAttemptAt: next.map { Date(micros: $0) })
    }
}
