import ArgumentParser
import AsyncHTTPClient
import EdgyModel
import Foundation
import NIOCore
import NIOHTTP1

/// `--url` and `--token` of the commands that talk to a server.
public struct ServerOptions: ParsableArguments {
    @Option(help: "The server (default: $EDGY_URL, else http://127.0.0.1:8080).")
    public var url: String?

    @Option(help: "The bearer token (default: $EDGY_TOKEN). Prefer the variable: arguments show in ps.")
    public var token: String?

    @Flag(help: "Print the server's JSON instead of text.")
    public var json = false

    public init() {}

    func client() throws -> ServerClient {
        let environment = ProcessInfo.processInfo.environment
        let base = url ?? environment["EDGY_URL"] ?? "http://127.0.0.1:8080"
        guard let parsed = URL(string: base), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
            throw ValidationError("--url must be an http:// or https:// URL, got \(base)")
        }
        guard let secret = token ?? environment["EDGY_TOKEN"], !secret.isEmpty else {
            throw ValidationError("give a token: --token or EDGY_TOKEN")
        }
        return ServerClient(base: base.hasSuffix("/") ? String(base.dropLast()) : base, token: secret)
    }
}

/// An error the server answered, or a failure to reach it: printed as one line, exit 125.
struct ServerError: Error, CustomStringConvertible {
    var description: String
}

/// The `/v1` routes `edgy` calls (tasks, tokens), over AsyncHTTPClient (no FoundationNetworking:
/// see `Package.swift`).
struct ServerClient {
    var base: String
    var token: String

    /// The most a task's JSON may be: its output and reports are bounded by the server.
    static let maxBody = 256 << 20

    func request(_ method: String, _ path: String, body: [UInt8]? = nil, contentType: String? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.body = .bytes(body)
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        } catch {
            throw ServerError(description: "cannot reach \(base): \(error)")
        }
        let data = Data(try await response.body.collect(upTo: Self.maxBody).readableBytesView)
        try Self.check(Int(response.status.code), data)
        return data
    }

    /// A request with a JSON body.
    func request(_ method: String, _ path: String, json: [String: Any]) async throws -> Data {
        try await request(method, path, body: Array(try JSONSerialization.data(withJSONObject: json)), contentType: "application/json")
    }

    /// The server's error as one line: `400 invalid_field: … (steps[2].command)`.
    static func check(_ status: Int, _ data: Data) throws {
        guard !(200..<300).contains(status) else { return }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard let error = object?["error"] as? [String: Any] else {
            throw ServerError(description: "the server answered \(status): \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        let field = (error["field"] as? String).map { " (\($0))" } ?? ""
        throw ServerError(description: "\(status) \(error["code"] as? String ?? ""): \(error["message"] as? String ?? "")\(field)")
    }

    /// One server-sent event.
    struct Event {
        var kind: String
        var data: String
    }

    /// Calls `handle` with each of the task's events, from the first, until the server ends the
    /// stream (after the task's final status).
    func events(_ id: String, handle: (Event) throws -> Void) async throws {
        var request = HTTPClientRequest(url: base + "/v1/tasks/\(id)/events")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await HTTPClient.shared.execute(request, timeout: .hours(24))
        guard response.status.code == 200 else {
            try Self.check(Int(response.status.code), Data(try await response.body.collect(upTo: 1 << 20).readableBytesView))
            return
        }
        var pending: [UInt8] = []
        var kind = ""
        var data: [String] = []
        for try await buffer in response.body {
            pending += buffer.readableBytesView
            while let newline = pending.firstIndex(of: 0x0a) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line.isEmpty {
                    if !kind.isEmpty { try handle(Event(kind: kind, data: data.joined(separator: "\n"))) }
                    kind = ""
                    data = []
                } else if line.hasPrefix("event:") {
                    kind = String(line.dropFirst(6)).trimmingCharacters(in: .whitespaces)
                } else if line.hasPrefix("data:") {
                    let value = line.dropFirst(5)
                    data.append(String(value.hasPrefix(" ") ? value.dropFirst() : value))
                }
            }
            // A line longer than the server ever sends is not an event stream.
            guard pending.count <= 16 << 20 else { throw ServerError(description: "the event stream sent a line over 16 MiB") }
        }
    }
}
