import Foundation
import Synchronization

/// A `TokenStore` that remembers the principals of known token hashes for a short while, so that
/// a client's requests do not each pay a read of the store (a transaction on SQLite, a round
/// trip on PostgreSQL).
///
/// - A token revoked through this store stops working at once; one revoked on another host
///   sharing the database (or by hand in it) works here for at most `lifetime` longer.
/// - Expiry is not cached: the caller checks `Principal.isValid(at:)` at every request.
/// - Unknown hashes are not remembered, so a token created on another host works at once, and a
///   guesser fills nothing.
/// - At most `capacity` principals are kept; when it is full, the expired ones are dropped,
///   and if none has expired the cache starts over.
public final class CachingTokenStore: TokenStore {
    public let inner: any TokenStore
    public let lifetime: Duration
    public let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let entries = Mutex<[String: Entry]>([:])

    private struct Entry {
        var principal: Principal
        var until: ContinuousClock.Instant
    }

    public init(
        _ inner: any TokenStore, lifetime: Duration = .seconds(1), capacity: Int = 4096,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.inner = inner
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
        self.now = now
    }

    public func principal(forTokenHash hash: String) async throws -> Principal? {
        let time = now()
        if let cached = entries.withLock({ $0[hash] }), time < cached.until { return cached.principal }
        guard let principal = try await inner.principal(forTokenHash: hash) else {
            entries.withLock { _ = $0.removeValue(forKey: hash) }
            return nil
        }
        entries.withLock { table in
            if table.count >= capacity, table[hash] == nil {
                table = table.filter { time < $0.value.until }
                if table.count >= capacity { table = [:] }
            }
            table[hash] = Entry(principal: principal, until: time + lifetime)
        }
        return principal
    }

    public func revokeToken(id: UUID, at date: Date) async throws -> Bool {
        let revoked = try await inner.revokeToken(id: id, at: date)
        forget(id: id)
        return revoked
    }

    public func insertToken(_ principal: Principal, tokenHash: String) async throws {
        try await inner.insertToken(principal, tokenHash: tokenHash)
    }

    public func listTokens(tenant: String?) async throws -> [Principal] {
        try await inner.listTokens(tenant: tenant)
    }

    /// How many principals are remembered now (for tests).
    public var count: Int { entries.withLock { $0.count } }

    private func forget(id: UUID) {
        entries.withLock { table in table = table.filter { $0.value.principal.id != id } }
    }
}
