import EdgyAuth
import EdgyModel
import EdgyPolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Resolves `Authorization: Bearer <token>` to a `Principal` by the token's SHA-256 and puts it in
/// the context. Missing, unknown, expired and revoked tokens are 401; the token is never logged.
///
/// It also keeps the audit log: every authentication failure, and every create, cancel,
/// delete, token, policy and audit action with its result, is one entry. A client address that
/// fails authentication `APIConfiguration.authFailureLimit` times in a window has its further failures
/// answered 429 until the window ends; a valid token from that address is still served.
///
/// No secret is compared here: the token is hashed and looked up by its hash, so the time an
/// answer takes says nothing about how much of a guess was right.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = EdgyRequestContext
    let tokens: any TokenStore
    let audit: AuditLog
    let limiter: AuthFailureLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let client = context.clientAddress
        let principal: Principal
        let tokenHash: String
        do {
            (principal, tokenHash) = try await authenticate(request)
        } catch let error as APIError {
            // The token is checked first: only a failing request is counted or refused, so a valid
            // token works however many guesses came from the same address. Refused failures are
            // not logged one by one, so a guesser cannot flood the audit log.
            if let seconds = limiter.retryAfter(client) {
                throw APIError(.tooManyRequests, code: "too_many_failures", "too many failed authentications from this address",
                               headers: [.retryAfter: String(seconds)])
            }
            // Method, path and reason; never the token.
            context.logger.notice("request refused", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "reason": "\(error.message)", "client": "\(client)",
            ])
            record(AuditEntry(action: "auth", result: "denied", status: Int(error.status.code), client: client,
                              method: request.method.rawValue, path: request.uri.path, detail: error.message), context)
            if limiter.recordFailure(client) {
                context.logger.warning("failed authentications reached the limit; refusing the address's failures for a while",
                                       metadata: ["client": "\(client)"])
            }
            throw error
        }
        var context = context
        context.principal = principal
        context.tokenHash = tokenHash
        context.logger[metadataKey: "principal"] = "\(principal.name)"
        context.logger[metadataKey: "tenant"] = "\(principal.tenant)"
        let audited = AuditedAction(request)
        do {
            let response = try await next(request, context)
            if let audited { record(entry(audited, principal, request, context, status: Int(response.status.code), detail: nil), context) }
            return response
        } catch let error as APIError {
            // Every rejected action, with who asked (accepted ones are logged where they happen).
            context.logger.info("request rejected", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(error.status.code)",
                "code": "\(error.code)", "field": "\(error.field ?? "")",
            ])
            if let audited { record(entry(audited, principal, request, context, status: Int(error.status.code), detail: error.message), context) }
            throw error
        } catch {
            if let audited { record(entry(audited, principal, request, context, status: 500, detail: "internal error"), context) }
            throw error
        }
    }

    private func entry(_ action: AuditedAction, _ principal: Principal, _ request: Request, _ context: Context, status: Int, detail: String?) -> AuditEntry {
        let facts = context.audit.current
        return AuditEntry(
            action: action.name, result: AuditEntry.result(forStatus: status), status: status, principal: principal,
            client: context.clientAddress, method: request.method.rawValue, path: request.uri.path,
            taskID: facts.taskID ?? action.taskID, policy: facts.policy, tokenID: facts.tokenID ?? action.tokenID,
            detail: detail ?? facts.detail)
    }

    private func record(_ entry: AuditEntry, _ context: Context) {
        if let error = audit.record(entry) {
            context.logger.error("cannot write the audit log", metadata: ["error": "\(error)", "action": "\(entry.action)"])
        }
    }

    /// The caller and the hash of its token.
    private func authenticate(_ request: Request) async throws -> (Principal, String) {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("missing bearer token")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.unauthorized("the Authorization header must be 'Bearer <token>'")
        }
        let token = String(parts[1].trimmingWhitespace)
        let hash = TokenSecret.hash(token)
        guard !token.isEmpty, let principal = try await tokens.principal(forTokenHash: hash) else {
            throw APIError.unauthorized("invalid token")
        }
        guard principal.isValid(at: Date()) else {
            throw APIError.unauthorized(principal.revokedAt != nil ? "token revoked" : "token expired")
        }
        return (principal, hash)
    }
}

/// The requests the audit log records beyond authentication failures: writes of tasks, blobs,
/// tokens and policies, and reads of the audit log itself. Reads of tasks and policies are not recorded.
struct AuditedAction: Equatable {
    var name: String
    var taskID: UUID?
    var tokenID: UUID?

    init?(_ request: Request) {
        self.init(method: request.method, path: request.uri.path)
    }

    init?(method: HTTPRequest.Method, path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch (method, parts.count) {
        case (.post, 0), (.put, 0): name = "task.create"
        case (.delete, 1): name = "task.delete"; taskID = UUID(uuidString: parts[0])
        case (.post, 2) where parts == ["v1", "tasks"]: name = "task.create"
        case (.delete, 3) where parts[0...1] == ["v1", "tasks"]: name = "task.delete"; taskID = UUID(uuidString: parts[2])
        case (.post, 4) where parts[0...1] == ["v1", "tasks"] && parts[3] == "cancel": name = "task.cancel"; taskID = UUID(uuidString: parts[2])
        case (.post, 2) where parts == ["v1", "tokens"]: name = "token.create"
        case (.get, 2) where parts == ["v1", "tokens"]: name = "token.list"
        case (.delete, 3) where parts[0...1] == ["v1", "tokens"]: name = "token.revoke"; tokenID = UUID(uuidString: parts[2])
        case (.post, 3) where parts == ["v1", "policies", "reload"]: name = "policy.reload"
        case (.get, 2) where parts == ["v1", "audit"]: name = "audit.read"
        case (.post, 2) where parts == ["v1", "blobs"]: name = "blob.upload"
        case (.delete, 3) where parts[0...1] == ["v1", "blobs"]: name = "blob.delete"
        default: return nil
        }
    }
}

/// Who may do what.
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

extension Substring {
    /// What `trimmingCharacters(in: .whitespaces)` keeps (it trims tabs, Unicode's space
    /// separators and, on Linux, the zero-width space), without Foundation's `CharacterSet`:
    /// about 14 µs of every request's CPU in a profile, cold, for a token of a few dozen ASCII bytes.
    var trimmingWhitespace: Substring {
        func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
            scalar == "\t" || scalar == "\u{200B}" || scalar.properties.generalCategory == .spaceSeparator
        }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !isWhitespace($0) }),
              let last = scalars.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return Substring(scalars[first...last])
    }
}
