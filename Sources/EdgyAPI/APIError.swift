import EdgyModel
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Every error the API answers with: a status and the JSON body
/// `{"error": {"code", "message", "field"?}}`.
public struct APIError: HTTPResponseError, Sendable, Hashable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code, e.g. `invalid_field`, `queue_full`.
    public var code: String
    public var message: String
    /// The request field at fault, e.g. `files[2].path`, `limits.memory_mib`.
    public var field: String?
    /// Extra response headers (`Retry-After`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" + (field.map { " (\($0))" } ?? "") }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    func response() -> Response {
        Response(status: status, headers: responseHeaders, body: .init(byteBuffer: body))
    }

    /// `headers` and the body's type.
    var responseHeaders: HTTPFields {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return fields
    }

    /// `{"error": {"code", "message", "field"?}}`.
    var body: ByteBuffer {
        struct Body: Encodable {
            struct Inner: Encodable {
                var code: String
                var message: String
                var field: String?
            }
            var error: Inner
        }
        let data = (try? JSONEncoder().encode(Body(error: .init(code: code, message: message, field: field)))) ?? Data()
        return ByteBuffer(bytes: data)
    }

    // MARK: The errors the API uses

    static func badRequest(_ message: String, field: String? = nil) -> APIError {
        APIError(.badRequest, code: field == nil ? "bad_request" : "invalid_field", message, field: field)
    }
    static func invalidJSON(_ message: String) -> APIError { APIError(.badRequest, code: "invalid_json", message) }
    static func invalidArchive(_ message: String, field: String?) -> APIError {
        APIError(.badRequest, code: "invalid_archive", message, field: field)
    }
    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthorized", message, headers: [.wwwAuthenticate: "Bearer"])
    }
    static func forbidden(_ message: String, field: String? = nil) -> APIError {
        APIError(.forbidden, code: "forbidden", message, field: field)
    }
    static func taskNotFound(_ id: String) -> APIError { APIError(.notFound, code: "task_not_found", "no task \(id)") }
    static func policyNotFound(_ name: String, field: String? = nil) -> APIError {
        APIError(.notFound, code: "policy_not_found", "no policy named \(name)", field: field)
    }
    static func routeNotFound(_ method: HTTPRequest.Method, _ path: String) -> APIError {
        APIError(.notFound, code: "route_not_found", "no route \(method.rawValue) \(path)")
    }
    static func methodNotAllowed(_ method: HTTPRequest.Method, _ path: String) -> APIError {
        APIError(.methodNotAllowed, code: "method_not_allowed", "\(method.rawValue) is not allowed on \(path)")
    }
    static func tooLarge(_ message: String, field: String? = nil) -> APIError {
        APIError(.contentTooLarge, code: "too_large", message, field: field)
    }
    static func unsupportedMediaType(_ message: String) -> APIError {
        APIError(.unsupportedMediaType, code: "unsupported_media_type", message)
    }
    static func unprocessable(_ code: String, _ message: String, field: String?) -> APIError {
        APIError(.unprocessableContent, code: code, message, field: field)
    }
    static func queueFull(_ message: String, retryAfter: Int) -> APIError {
        APIError(.tooManyRequests, code: "queue_full", message, headers: [.retryAfter: String(retryAfter)])
    }
    static func unavailable(_ message: String) -> APIError { APIError(.serviceUnavailable, code: "unavailable", message) }
    static let internalError = APIError(.internalServerError, code: "internal", "internal error")
}

/// Turns every error into the JSON error shape: Hummingbird's own (`HTTPError`, 404 for unknown
/// routes, 413 from body collection) and unexpected ones (500, logged, never echoed).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as HTTPError {
            switch error.status {
            case .notFound: return APIError.routeNotFound(request.method, request.uri.path).response()
            case .methodNotAllowed: return APIError.methodNotAllowed(request.method, request.uri.path).response()
            case .contentTooLarge: return APIError.tooLarge("the request body is too large").response()
            default:
                let code = error.status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
                return APIError(error.status, code: code, error.body ?? error.status.reasonPhrase).response()
            }
        } catch {
            logger.error("request failed", metadata: ["method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "error": "\(error)"])
            return APIError.internalError.response()
        }
    }
}
