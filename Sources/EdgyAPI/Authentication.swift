import EdgyAuth
import EdgyPolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Resolves `Authorization: Bearer <token>` to a `Principal` by the token's SHA-256 and puts it in
/// the context. Missing, unknown, expired and revoked tokens are 401; the token is never logged.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = EdgyRequestContext
    let tokens: any TokenStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let principal: Principal
        do {
            principal = try await authenticate(request)
        } catch let error as APIError {
            // The audit trail of refusals: method, path and reason; never the token.
            context.logger.notice("request refused", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "reason": "\(error.message)",
            ])
            throw error
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "principal"] = "\(principal.name)"
        context.logger[metadataKey: "tenant"] = "\(principal.tenant)"
        do {
            return try await next(request, context)
        } catch let error as APIError {
            // Every rejected action, with who asked (accepted ones are logged where they happen).
            context.logger.info("request rejected", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(error.status.code)",
                "code": "\(error.code)", "field": "\(error.field ?? "")",
            ])
            throw error
        }
    }

    private func authenticate(_ request: Request) async throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("missing bearer token")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.unauthorized("the Authorization header must be 'Bearer <token>'")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, let principal = try await tokens.principal(forTokenHash: TokenSecret.hash(token)) else {
            throw APIError.unauthorized("invalid token")
        }
        guard principal.isValid(at: Date()) else {
            throw APIError.unauthorized(principal.revokedAt != nil ? "token revoked" : "token expired")
        }
        return principal
    }
}

/// Who may do what (DESIGN §5).
enum Access {
    /// Readers only read.
    static func requireWriter(_ principal: Principal) throws(APIError) {
        guard principal.role != .reader else {
            throw APIError.forbidden("role reader may not create, cancel or delete tasks")
        }
    }

    static func requireAdmin(_ principal: Principal) throws(APIError) {
        guard principal.role == .admin else { throw APIError.forbidden("only an admin may do this") }
    }

    /// A submitter may use a policy its role is listed for in the policy's `access.roles` and, if
    /// the token names policies, one of those. Admins use any policy.
    static func mayUse(_ principal: Principal, _ policy: Policy) -> Bool {
        if principal.role == .admin { return true }
        guard principal.role == .submitter, policy.access.roles.contains(principal.role.rawValue) else { return false }
        return principal.policies.map { $0.contains(policy.name) } ?? true
    }

    /// Whether the principal may see a policy in `GET /v1/policies`: admins all, others the ones their
    /// token names (if it names any).
    static func maySee(_ principal: Principal, _ policy: Policy) -> Bool {
        principal.role == .admin || (principal.policies.map { $0.contains(policy.name) } ?? true)
    }
}
