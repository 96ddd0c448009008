import EdgyConsole
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /ui`: the web console. Its page and scripts hold no data and need no token (the token is
/// typed into the page and sent with each API call), so they are served without one. The policy
/// headers keep the page to this origin: no inline script, nothing loaded from elsewhere, no
/// framing, no referrer.
struct ConsoleController: Sendable {
    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "ui") { _, _ in try Self.serve("") }
        routes.on(.get, "ui/app.js") { _, _ in try Self.serve("app.js") }
        routes.on(.get, "ui/app.css") { _, _ in try Self.serve("app.css") }
    }

    static func serve(_ name: String) throws -> Response {
        guard let asset = ConsoleAssets.asset(name) else { throw APIError(.notFound, code: "not_found", "no console file \(name)") }
        return Response(
            status: .ok,
            headers: [
                .contentType: asset.contentType,
                .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
                HTTPField.Name("Referrer-Policy")!: "no-referrer",
                .cacheControl: "no-cache",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}
