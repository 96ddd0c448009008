import EdgyModel
import EdgyStore
import Foundation
import Hummingbird

/// `GET /v1/workers`: the daemons that share this store (admin). On the embedded SQLite store
/// that is this daemon alone; on PostgreSQL, every host. And `GET /metrics` for operators.
struct WorkerController: Sendable {
    let deps: APIDependencies

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "v1/workers", use: list)
        routes.on(.get, "metrics", use: metrics)
    }

    /// `GET /metrics`: queue depth, attempts by outcome and their durations, in Prometheus text
    /// format, for any authenticated principal (scrapers send a bearer token).
    @Sendable func metrics(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        _ = try context.requirePrincipal()
        guard let text = deps.metrics?() else { throw APIError(.notFound, code: "metrics_disabled", "this server exports no metrics") }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
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
