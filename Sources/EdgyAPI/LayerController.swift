import EdgyModel
import Foundation
import Hummingbird
import Logging

/// `GET /v1/layers` and `DELETE /v1/layers/{key}` (admin): this host's dependency layers. Each
/// host keeps its own; on a shared PostgreSQL store, ask each host.
struct LayerController: Sendable {
    let deps: APIDependencies

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "v1/layers", use: list)
        routes.on(.delete, "v1/layers/{key}", use: remove)
    }

    struct LayerResource: Encodable {
        var key: String
        var bytes: UInt64
        var last_used: String
        var users: Int
    }

    @Sendable func list(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        try Access.requireAdmin(try context.requirePrincipal())
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let layers = deps.layers?.summaries() ?? []
        return try jsonResponse(["layers": layers.map {
            LayerResource(key: $0.key, bytes: $0.bytes, last_used: formatter.string(from: $0.lastUsed), users: $0.users)
        }])
    }

    @Sendable func remove(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        try Access.requireAdmin(try context.requirePrincipal())
        let key = try context.parameters.require("key")
        guard DependencyReport.isKey(key) else {
            throw APIError.badRequest("a layer key is 64 lower-case hexadecimal digits", field: "key")
        }
        switch deps.layers?.remove(key) ?? .notFound {
        case .removed:
            context.logger.info("dependency layer removed", metadata: ["key": "\(key)"])
            return Response(status: .noContent)
        case .notFound:
            throw APIError(.notFound, code: "layer_not_found", "no layer \(key) on this host")
        case .inUse:
            throw APIError(.conflict, code: "layer_in_use", "layer \(key) is in use by a running attempt; try again when it ends")
        }
    }
}
