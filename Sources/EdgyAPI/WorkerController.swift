import EdgyStore
import Foundation
import Hummingbird

/// `GET /v1/workers`: the daemons that share this store (admin). On the embedded SQLite store
/// that is this daemon alone; on PostgreSQL, every host.
struct WorkerController: Sendable {
    let deps: APIDependencies

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "v1/workers", use: list)
    }

    struct WorkerResource: Encodable {
        var id: String
        var host: String
        var slots: Int
        var kernel: String
        var cgroup_version: Int?
        var started_at: String
        var last_heartbeat: String
    }

    @Sendable func list(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        try Access.requireAdmin(try context.requirePrincipal())
        let workers = try await deps.workers?.listWorkers() ?? []
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return try jsonResponse(["workers": workers.map {
            WorkerResource(
                id: $0.id, host: $0.host, slots: $0.slots, kernel: $0.kernel, cgroup_version: $0.cgroupVersion,
                started_at: formatter.string(from: $0.startedAt), last_heartbeat: formatter.string(from: $0.lastHeartbeat))
        }])
    }
}
