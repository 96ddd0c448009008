import EdgyStore
import Foundation
import PostgresNIO

// Worker registration ("Many hosts", item 3): which daemons share the database, and when each
// was last heard from.
extension PostgresTaskStore: WorkerRegistry {
    /// Inserts the worker, or replaces its row when it registers again (a restart).
    public func registerWorker(_ worker: WorkerInfo) async throws {
        try await query("""
            INSERT INTO workers (id, host, slots, kernel, cgroup_version, started_at, last_heartbeat)
            VALUES (\(worker.id), \(worker.host), \(worker.slots), \(worker.kernel), \(worker.cgroupVersion),
                    \(worker.startedAt.micros), \(worker.lastHeartbeat.micros))
            ON CONFLICT (id) DO UPDATE SET
                host = EXCLUDED.host, slots = EXCLUDED.slots, kernel = EXCLUDED.kernel, cgroup_version = EXCLUDED.cgroup_version,
                started_at = EXCLUDED.started_at, last_heartbeat = EXCLUDED.last_heartbeat
            """)
    }

    /// Records that the worker is alive. False when it is not registered.
    @discardableResult
    public func heartbeatWorker(id: String, now: Date) async throws -> Bool {
        try await !query("UPDATE workers SET last_heartbeat = \(now.micros) WHERE id = \(id) RETURNING id").isEmpty
    }

    /// Every registered worker, by id.
    public func listWorkers() async throws -> [WorkerInfo] {
        try await query("""
            SELECT id, host, slots, kernel, cgroup_version, started_at, last_heartbeat FROM workers ORDER BY id
            """).map { row in
            let (id, host, slots, kernel, cgroupVersion, startedAt, lastHeartbeat) =
                try row.decode((String, String, Int, String, Int?, Int64, Int64).self)
            return WorkerInfo(
                id: id, host: host, slots: slots, kernel: kernel, cgroupVersion: cgroupVersion,
                startedAt: Date(micros: startedAt), lastHeartbeat: Date(micros: lastHeartbeat))
        }
    }

    /// Removes a worker that has stopped for good. False when it was not registered.
    @discardableResult
    public func removeWorker(id: String) async throws -> Bool {
        try await !query("DELETE FROM workers WHERE id = \(id) RETURNING id").isEmpty
    }
}
