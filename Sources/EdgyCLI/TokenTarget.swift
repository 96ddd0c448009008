import ArgumentParser
import EdgyAuth
import EdgyStoreSQLite
import Foundation
import Glibc

/// Where `edgy token` acts: `--server URL` (with an admin token) or `--state-dir DIR` (offline).
public struct TokenTarget: ParsableArguments {
    @Option(help: "The server's URL, e.g. http://127.0.0.1:8080.")
    public var server: String?

    @Option(help: "An admin token for --server (default: $EDGY_TOKEN). Prefer the variable: arguments show in ps.")
    public var token: String?

    @Option(name: .customLong("state-dir"), help: "Act offline on the daemon's state directory (its SQLite store).")
    public var stateDir: String?

    public init() {}

    public mutating func validate() throws {
        guard (server == nil) != (stateDir == nil) else {
            throw ValidationError("give exactly one of --server URL and --state-dir DIR")
        }
        if server != nil, token ?? ProcessInfo.processInfo.environment["EDGY_TOKEN"] == nil {
            throw ValidationError("--server needs an admin token: --token or EDGY_TOKEN")
        }
        if let server, URL(string: server)?.scheme == nil { throw ValidationError("--server must be a URL, got \(server)") }
        if let stateDir, !FileManager.default.fileExists(atPath: stateDir + "/edgy.sqlite") {
            throw ValidationError("\(stateDir) holds no edgy.sqlite: is it the daemon's state directory (and does the daemon use SQLite)?")
        }
    }

    enum Backend {
        case server(ServerClient)
        case offline(store: SQLiteTaskStore, audit: AuditLog)
    }

    func backend() throws -> Backend {
        if let server {
            let secret = token ?? ProcessInfo.processInfo.environment["EDGY_TOKEN"] ?? ""
            return .server(ServerClient(base: server.hasSuffix("/") ? String(server.dropLast()) : server, token: secret))
        }
        let directory = stateDir ?? ""
        let store = try SQLiteTaskStore(path: directory + "/edgy.sqlite")
        return .offline(store: store, audit: try AuditLog(path: directory + "/audit.log"))
    }

    /// An audit line for an offline action: the principal is the local operator, not a token.
    static func offlineAudit(_ action: String, tokenID: UUID?, detail: String) -> AuditEntry {
        var entry = AuditEntry(action: action, result: "ok", status: 0, client: "cli", tokenID: tokenID, detail: detail)
        entry.principalName = "local uid \(getuid())"
        return entry
    }
}

/// A token as `edgy token` shows it (the server's `Token` schema).
struct TokenInfo: Codable {
    var id: String
    var name: String
    var role: String
    var tenant: String
    var policies: [String]?
    var state: String
    var createdAt: String
    var expiresAt: String?
    var revokedAt: String?
    /// Only in the answer to a create.
    var token: String?

    enum CodingKeys: String, CodingKey {
        case id, name, role, tenant, policies, state, token
        case createdAt = "created_at", expiresAt = "expires_at", revokedAt = "revoked_at"
    }

    init(_ principal: Principal, token: String? = nil, now: Date = Date()) {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        id = principal.id.uuidString.lowercased()
        name = principal.name
        role = principal.role.rawValue
        tenant = principal.tenant
        policies = principal.policies
        state = principal.revokedAt != nil ? "revoked" : principal.isValid(at: now) ? "active" : "expired"
        createdAt = principal.createdAt.formatted(style)
        expiresAt = principal.expiresAt?.formatted(style)
        revokedAt = principal.revokedAt?.formatted(style)
        self.token = token
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
