import EdgyAuth
import EdgyPolicy
import EdgyStore
import Foundation
import GRDB

// Tokens in the same database as the tasks (`TokenStore`).
extension SQLiteTaskStore {
    public func insertToken(_ principal: Principal, tokenHash: String) async throws {
        let policies = try principal.policies.map(Self.json)
        let arguments: StatementArguments = [
            tokenHash, principal.id.uuidString, principal.name, principal.role.rawValue, principal.tenant, policies,
            principal.createdAt.micros, principal.expiresAt?.micros, principal.revokedAt?.micros, principal.callbackURL,
        ]
        try await transaction { db in
            // Like the reference store, a second insert under the same hash replaces the first.
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO tokens (hash, id, name, role, tenant, policies, created_at, expires_at, revoked_at, callback_url)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: arguments)
        }
    }

    /// Every request authenticates, so this read stays on the calling thread: a point lookup by
    /// primary key takes microseconds, less than the hop to a reader's queue and back that an
    /// async read costs, and in WAL mode a reader never waits for the writer.
    public func principal(forTokenHash hash: String) async throws -> Principal? {
        try readOnCallingThread { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.tokenColumns) FROM tokens WHERE hash = ?"), arguments: [hash])
                .map(Self.decodePrincipal)
        }
    }

    public func listTokens(tenant: String?) async throws -> [Principal] {
        try await pool.read { db in
            let rows: [Row]
            if let tenant {
                rows = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT \(Self.tokenColumns) FROM tokens WHERE tenant = ? ORDER BY created_at, id
                    """), arguments: [tenant])
            } else {
                rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT \(Self.tokenColumns) FROM tokens ORDER BY created_at, id"))
            }
            return try rows.map(Self.decodePrincipal)
        }
    }

    public func revokeToken(id: UUID, at date: Date) async throws -> Bool {
        try await transaction { db in
            try db.cachedStatement(sql: "UPDATE tokens SET revoked_at = ? WHERE id = ?").execute(arguments: [date.micros, id.uuidString])
            return db.changesCount > 0
        }
    }

    static let tokenColumns = "id, name, role, tenant, policies, created_at, expires_at, revoked_at, callback_url"

    static func decodePrincipal(_ row: Row) throws -> Principal {
        let idText: String = row[0]
        let roleText: String = row[2]
        guard let id = UUID(uuidString: idText), let role = Role(rawValue: roleText) else {
            throw SQLiteStoreError("malformed token row \(idText)")
        }
        let policies: String? = row[4]
        let expiresAt: Int64? = row[6]
        let revokedAt: Int64? = row[7]
        return Principal(
            id: id, name: row[1], role: role, tenant: row[3], policies: try policies.map { try unjson([String].self, $0) },
            createdAt: Date(micros: row[5]), expiresAt: expiresAt.map(Date.init(micros:)), revokedAt: revokedAt.map(Date.init(micros:)),
            callbackURL: row[8])
    }
}
