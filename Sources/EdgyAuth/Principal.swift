import Crypto
import EdgyModel
import Foundation

/// What a token may do.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    /// Everything, including tokens and policy reloads.
    case admin
    /// Creates, reads, cancels and deletes its tenant's tasks.
    case submitter
    /// Reads its tenant's tasks.
    case reader
}

/// Who is calling: a token's identity, never the token itself.
public struct Principal: Sendable, Hashable, Codable, Identifiable {
    public var id: UUID
    /// A human name for the token, e.g. "ci-runner".
    public var name: String
    public var role: Role
    public var tenant: String
    /// The policies this token may run; nil means any its role allows.
    public var policies: [String]?
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    /// Where the finished tasks this token creates are POSTed when a task gives no `callback_url`.
    public var callbackURL: String?

    public init(
        id: UUID = UUID(), name: String, role: Role, tenant: String, policies: [String]? = nil,
        createdAt: Date = Date(), expiresAt: Date? = nil, revokedAt: Date? = nil, callbackURL: String? = nil
    ) {
        self.callbackURL = callbackURL
        self.id = id
        self.name = name
        self.role = role
        self.tenant = tenant
        self.policies = policies
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// False once revoked or expired.
    public func isValid(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// Tokens are random secrets shown once; only their SHA-256 is stored, so a leaked database
/// yields no usable token, and lookups by hash compare no secret byte by byte.
public enum TokenSecret {
    /// A new token: "edgy_" and 32 random bytes, base64url.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let encoded = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "edgy_" + encoded
    }

    /// Hex SHA-256 of the token.
    public static func hash(_ token: String) -> String {
        BlobDigest.hex(SHA256.hash(data: Data(token.utf8)))
    }

    /// The key that signs the webhooks of tasks a token creates: hex HMAC-SHA256 keyed with the
    /// token's hash (`hash(token)`, as UTF-8) over "edgy-webhook-v1". The server derives it from
    /// the hash it stores; a client from its token (`edgy token webhook-secret`); the hash alone
    /// authenticates nothing, so a receiver holding this key cannot call the API.
    public static func webhookSecret(tokenHash: String) -> String {
        let key = SymmetricKey(data: Data(tokenHash.utf8))
        return BlobDigest.hex(HMAC<SHA256>.authenticationCode(for: Data("edgy-webhook-v1".utf8), using: key))
    }
}

/// Where principals live, keyed by token hash. SQLite and PostgreSQL implement it beside
/// their `TaskStore`.
public protocol TokenStore: Sendable {
    func insertToken(_ principal: Principal, tokenHash: String) async throws
    /// The principal for a token hash, revoked or not (the caller checks `isValid`).
    func principal(forTokenHash hash: String) async throws -> Principal?
    func listTokens(tenant: String?) async throws -> [Principal]
    /// Returns false when there is no such token.
    func revokeToken(id: UUID, at date: Date) async throws -> Bool
}

/// A `TokenStore` in memory, for tests and the contract suite.
public actor InMemoryTokenStore: TokenStore {
    private var byHash: [String: Principal] = [:]

    public init() {}

    public func insertToken(_ principal: Principal, tokenHash: String) async throws {
        byHash[tokenHash] = principal
    }

    public func principal(forTokenHash hash: String) async throws -> Principal? { byHash[hash] }

    public func listTokens(tenant: String?) async throws -> [Principal] {
        byHash.values.filter { tenant == nil || $0.tenant == tenant }.sorted { $0.createdAt < $1.createdAt }
    }

    public func revokeToken(id: UUID, at date: Date) async throws -> Bool {
        guard let entry = byHash.first(where: { $0.value.id == id }) else { return false }
        byHash[entry.key]?.revokedAt = date
        return true
    }
}
