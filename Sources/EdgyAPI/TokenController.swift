import EdgyAuth
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/v1/tokens`, for admins: create (the secret is in that answer and nowhere else, ever), list
/// (no secrets) and revoke.
struct TokenController: Sendable {
    let deps: APIDependencies
    let config: APIConfiguration

    func register(_ routes: RouteRegistrar) {
        routes.on(.post, "v1/tokens", use: create)
        routes.on(.get, "v1/tokens", use: list)
        routes.on(.delete, "v1/tokens/{id}", use: revoke)
    }

    /// A token as `GET /v1/tokens` shows it: everything but the secret (which only a create answers with).
    struct TokenResource: Encodable {
        var principal: Principal
        var now: Date
        /// The secret, in the answer to a create only.
        var token: String? = nil

        enum CodingKeys: String, CodingKey {
            case id, name, role, tenant, policies, state, token
            case createdAt = "created_at", expiresAt = "expires_at", revokedAt = "revoked_at", callbackURL = "callback_url"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(principal.id.uuidString.lowercased(), forKey: .id)
            try c.encode(principal.name, forKey: .name)
            try c.encode(principal.role.rawValue, forKey: .role)
            try c.encode(principal.tenant, forKey: .tenant)
            try c.encode(principal.policies, forKey: .policies)
            try c.encode(principal.revokedAt != nil ? "revoked" : principal.isValid(at: now) ? "active" : "expired", forKey: .state)
            try c.encode(timestamp(principal.createdAt), forKey: .createdAt)
            try c.encode(principal.expiresAt.map(timestamp), forKey: .expiresAt)
            try c.encode(principal.revokedAt.map(timestamp), forKey: .revokedAt)
            try c.encode(principal.callbackURL, forKey: .callbackURL)
            try c.encodeIfPresent(token, forKey: .token)
        }
    }

    struct CreateRequest: Decodable {
        var name: String
        var role: String
        var tenant: String?
        var policies: [String]?
        /// `30d`, `12h`, … (see `TokenLifetime`).
        var expiresIn: String?
        /// The default webhook of the tasks it creates.
        var callbackURL: String?
        enum CodingKeys: String, CodingKey { case name, role, tenant, policies, expiresIn = "expires_in", callbackURL = "callback_url" }
    }

    @Sendable func create(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireAdmin(principal)
        var request = request
        let body = try await request.collectBody(upTo: 64 << 10)
        let ask: CreateRequest
        do {
            ask = try JSONDecoder().decode(CreateRequest.self, from: Data(body.readableBytesView))
        } catch {
            throw APIError.invalidJSON("a token request is JSON {name, role, tenant?, policies?, expires_in?, callback_url?}")
        }
        if let callbackURL = ask.callbackURL { try TaskDraft.checkCallback(callbackURL, config: config) }
        guard let role = Role(rawValue: ask.role) else {
            throw APIError.badRequest("role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))", field: "role")
        }
        var expiresAt: Date?
        if let text = ask.expiresIn {
            guard let seconds = TokenLifetime.parse(text) else {
                throw APIError.badRequest("expires_in must be \(TokenLifetime.syntax)", field: "expires_in")
            }
            expiresAt = Date().addingTimeInterval(seconds)
        }
        let issued: IssuedToken
        do {
            issued = try await deps.tokens.issueToken(
                name: ask.name, role: role, tenant: ask.tenant ?? principal.tenant, policies: ask.policies, expiresAt: expiresAt,
                callbackURL: ask.callbackURL)
        } catch let error as TokenRequestError {
            throw APIError.badRequest(error.description, field: error.field)
        }
        context.audit.update {
            $0.tokenID = issued.principal.id
            $0.detail = "\(issued.principal.role.rawValue) token \(issued.principal.name) for tenant \(issued.principal.tenant)"
        }
        context.logger.notice("token created", metadata: [
            "token_id": "\(issued.principal.id)", "name": "\(issued.principal.name)", "role": "\(role.rawValue)", "for_tenant": "\(issued.principal.tenant)",
        ])
        return try jsonResponse(TokenResource(principal: issued.principal, now: Date(), token: issued.token), status: .created)
    }

    @Sendable func list(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireAdmin(principal)
        let now = Date()
        let tokens = try await deps.tokens.listTokens(tenant: request.uri.queryParameters.get("tenant"))
        return try jsonResponse(["tokens": tokens.map { TokenResource(principal: $0, now: now) }])
    }

    @Sendable func revoke(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireAdmin(principal)
        let text = try context.parameters.require("id")
        guard let id = UUID(uuidString: text), try await deps.tokens.revokeToken(id: id, at: Date()) else {
            throw APIError(.notFound, code: "token_not_found", "no token \(text)")
        }
        context.logger.notice("token revoked", metadata: ["token_id": "\(id)"])
        let revoked = try await deps.tokens.listTokens(tenant: nil).first { $0.id == id }
        guard let revoked else { return Response(status: .noContent) }
        return try jsonResponse(TokenResource(principal: revoked, now: Date()))
    }
}

/// `GET /v1/audit`, for admins: the newest audit entries, filtered by action, tenant and time.
struct AuditController: Sendable {
    let deps: APIDependencies

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "v1/audit", use: list)
    }

    @Sendable func list(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireAdmin(principal)
        let parameters = request.uri.queryParameters
        var query = AuditQuery(action: parameters.get("action"), tenant: parameters.get("tenant"))
        if let since = parameters.get("since") {
            guard let date = RFC3339.date(since) else { throw APIError.badRequest("since must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z", field: "since") }
            query.since = date
        }
        if let limit = parameters.get("limit") {
            guard let parsed = Int(limit), (1...10_000).contains(parsed) else {
                throw APIError.badRequest("limit must be an integer from 1 to 10000", field: "limit")
            }
            query.limit = parsed
        }
        let entries = deps.audit.entries(query)
        return try jsonResponse(["entries": entries])
    }
}
