import EdgyAuth
import Foundation
import PostgresNIO

// TokenStore: principals keyed by the SHA-256 of their token, matching InMemoryTokenStore.
extension PostgresTaskStore {
    private static func decodePrincipal(_ row: PostgresRow) throws -> Principal {
        let (id, name, role, tenant, policies, createdAt, expiresAt, revokedAt, callbackURL) =
            try row.decode((UUID, String, String, String, String?, Int64, Int64?, Int64?, String?).self)
        guard let role = Role(rawValue: role) else { throw PostgresStoreError("token \(id) has unknown role \(role)") }
        return Principal(
            id: id, name: name, role: role, tenant: tenant,
            policies: try policies.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) },
            createdAt: Date(micros: createdAt), expiresAt: expiresAt.map(Date.init(micros:)), revokedAt: revokedAt.map(Date.init(micros:)),
            callbackURL: callbackURL)
    }

    public func insertToken(_ principal: Principal, tokenHash: String) async throws {
        let policies = try principal.policies.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try await query("""
            INSERT INTO tokens (id, token_hash, name, role, tenant, policies, created_at, expires_at, revoked_at, callback_url)
            VALUES (\(principal.id), \(tokenHash), \(principal.name), \(principal.role.rawValue), \(principal.tenant), \(policies)::jsonb,
                    \(principal.createdAt.micros), \(principal.expiresAt?.micros), \(principal.revokedAt?.micros), \(principal.callbackURL))
            ON CONFLICT (token_hash) DO UPDATE SET
                id = EXCLUDED.id, name = EXCLUDED.name, role = EXCLUDED.role, tenant = EXCLUDED.tenant, policies = EXCLUDED.policies,
                created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, revoked_at = EXCLUDED.revoked_at,
                callback_url = EXCLUDED.callback_url
            """)
    }

    public func principal(forTokenHash hash: String) async throws -> Principal? {
        try await query("""
            SELECT id, name, role, tenant, policies::text, created_at, expires_at, revoked_at, callback_url FROM tokens WHERE token_hash = \(hash)
            """).first.map(Self.decodePrincipal)
    }

    public func listTokens(tenant: String?) async throws -> [Principal] {
        try await query("""
            SELECT id, name, role, tenant, policies::text, created_at, expires_at, revoked_at, callback_url FROM tokens
            WHERE \(tenant)::text IS NULL OR tenant = \(tenant)
            ORDER BY created_at, id
            """).map(Self.decodePrincipal)
    }

    public func revokeToken(id: UUID, at date: Date) async throws -> Bool {
        try await !query("UPDATE tokens SET revoked_at = \(date.micros) WHERE id = \(id) RETURNING id").isEmpty
    }
}
