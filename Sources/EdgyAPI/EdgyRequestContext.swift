import EdgyAuth
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The request context of every Edgy route: Hummingbird's core context plus the caller, set by
/// `BearerAuthMiddleware` (nil only on `/healthz` and `/readyz`).
public struct EdgyRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who is calling; never the token itself.
    public var principal: Principal?
    /// The SHA-256 of the caller's token (what the token store keeps), from which the key that
    /// signs its tasks' webhooks is derived (`TokenSecret.webhookSecret`).
    public var tokenHash: String?
    /// The peer of the connection (nil in router tests).
    public var remoteAddress: SocketAddress?
    /// What a handler learnt for the audit line `BearerAuthMiddleware` writes when it returns.
    let audit = AuditNote()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.tokenHash = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are collected with the API's own caps (`APIConfiguration.maxRequestBytes`).
    public var maxUploadSize: Int { 64 << 20 }

    /// The client's IP address, for rate limits and the audit log.
    var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }

    /// The authenticated caller.
    /// - Throws: `APIError.unauthorized` when no middleware set one (a wiring fault, answered as 401).
    func requirePrincipal() throws(APIError) -> Principal {
        guard let principal else { throw .unauthorized("missing bearer token") }
        return principal
    }
}

/// Facts a handler adds to its request's audit entry (the task it created, the policy it named,
/// the token it made). A reference, because the context is a value the middleware passed down.
final class AuditNote: Sendable {
    struct Facts {
        var taskID: UUID?
        var policy: String?
        var tokenID: UUID?
        var detail: String?
    }

    private let facts = Mutex(Facts())

    func update(_ body: (inout Facts) -> Void) { facts.withLock { body(&$0) } }
    var current: Facts { facts.withLock { $0 } }
}
