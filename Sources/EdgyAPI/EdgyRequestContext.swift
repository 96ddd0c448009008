import EdgyAuth
import Hummingbird

/// The request context of every Edgy route: Hummingbird's core context plus the caller, set by
/// `BearerAuthMiddleware` (nil only on `/healthz` and `/readyz`).
public struct EdgyRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who is calling; never the token itself.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
    }

    /// Bodies are collected with the API's own caps (`APIConfiguration.maxRequestBytes`).
    public var maxUploadSize: Int { 64 << 20 }

    /// The authenticated caller.
    /// - Throws: `APIError.unauthorized` when no middleware set one (a wiring fault, answered as 401).
    func requirePrincipal() throws(APIError) -> Principal {
        guard let principal else { throw .unauthorized("missing bearer token") }
        return principal
    }
}
