import HTTPTypes
import Hummingbird
import Logging

/// A route as the OpenAPI document names it: `GET /v1/tasks/{id}`.
struct APIRoute: Hashable, Sendable, CustomStringConvertible {
    var method: String
    var path: String
    var description: String { "\(method) \(path)" }
}

/// Adds routes to a router group and remembers them, so a test can hold the router and the OpenAPI
/// document to each other.
final class RouteRegistrar {
    private let group: RouterGroup<EdgyRequestContext>
    private let prefix: String
    private(set) var routes: [APIRoute] = []

    init(_ group: RouterGroup<EdgyRequestContext>, prefix: String = "") {
        self.group = group
        self.prefix = prefix
    }

    /// - Parameter routerPath: what the router matches, when it differs from the documented
    ///   `path` (`files/**` for the documented `files/{path}`, a path that may hold slashes).
    func on(
        _ method: HTTPRequest.Method, _ path: String, routerPath: String? = nil,
        use handler: @escaping @Sendable (Request, EdgyRequestContext) async throws -> Response
    ) {
        let matched = routerPath ?? path
        group.on(RouterPath(matched), method: method, use: handler)
        routes.append(APIRoute(method: method.rawValue, path: path.isEmpty ? "/" : "/" + path))
        declared[matched, default: []].append(method)
    }

    private var declared: [String: [HTTPRequest.Method]] = [:]

    /// The methods a client may try on a known path; the ones a path does not declare get 405.
    static let answeredMethods: [HTTPRequest.Method] =
        [.get, .head, .post, .put, .patch, .delete, .options, .trace] + [HTTPRequest.Method("QUERY")].compactMap { $0 }

    /// Answers every undeclared method on a known path 405 with `Allow` (after this group's
    /// middleware, so on authenticated paths only a token holder learns what is allowed).
    func answerUndeclaredMethods() {
        for (path, methods) in declared.sorted(by: { $0.key < $1.key }) {
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            for method in Self.answeredMethods where !methods.contains(method) && !(method == .head && methods.contains(.get)) {
                group.on(RouterPath(path), method: method) { _, _ -> Response in
                    throw APIError(.methodNotAllowed, code: "method_not_allowed", "\(method.rawValue) is not allowed here; allowed: \(allow)",
                                   headers: [.allow: allow])
                }
            }
        }
    }
}

/// The Edgy HTTP API: the prototype routes, `/v1`, health, and the OpenAPI document. The daemon
/// wraps it in `Application(router:configuration:)`.
///
/// - Important: every route but `/healthz` and `/readyz` requires `Authorization: Bearer <token>`.
public func buildRouter(_ deps: APIDependencies, _ config: APIConfiguration) -> Router<EdgyRequestContext> {
    makeRouter(deps, config).router
}

/// The router and the routes it serves.
func makeRouter(_ deps: APIDependencies, _ config: APIConfiguration) -> (router: Router<EdgyRequestContext>, routes: [APIRoute]) {
    let router = Router(context: EdgyRequestContext.self)
    router.add(middleware: ErrorMiddleware(logger: deps.logger))

    let open = RouteRegistrar(router.group())
    HealthController(deps: deps).register(open)
    ConsoleController().register(open)

    let limiter = AuthFailureLimiter(limit: config.authFailureLimit, window: config.authFailureWindow)
    let authentication = BearerAuthMiddleware(tokens: deps.tokens, audit: deps.audit, limiter: limiter)
    let authenticated = RouteRegistrar(router.group().add(middleware: authentication))
    let service = TaskService(deps: deps, config: config)
    TaskController(service: service).register(authenticated)
    StorageController(service: service).register(authenticated)
    PolicyController(deps: deps, service: service).register(authenticated)
    OpenAPIController().register(authenticated)
    WorkerController(deps: deps).register(authenticated)
    LayerController(deps: deps).register(authenticated)
    TokenController(deps: deps, config: config).register(authenticated)  // tokens and the audit log
    AuditController(deps: deps).register(authenticated)
    // Last: `/{id}` must not shadow anything (constant paths win in the trie either way).
    PrototypeController(service: service).register(authenticated)
    open.answerUndeclaredMethods()
    authenticated.answerUndeclaredMethods()
    // Unknown routes still need a token, so the 404 says nothing to strangers.
    router.add(middleware: authentication)
    return (router, open.routes + authenticated.routes)
}

/// `GET /healthz` (the process answers) and `GET /readyz` (it can take work), without auth.
struct HealthController: Sendable {
    let deps: APIDependencies

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "healthz") { _, _ in try jsonResponse(["status": "ok"]) }
        routes.on(.get, "readyz") { [deps] _, _ in
            guard await deps.readiness() else { throw APIError.unavailable("not ready") }
            return try jsonResponse(["status": "ready"])
        }
    }
}
