import EdgyAuth
import Foundation
import Synchronization
import Testing

/// The token cache in front of the store: what it remembers, for how long, and what it forgets.
@Suite struct CachingTokenStoreTests {
    /// Counts the inner store's lookups.
    final class CountingStore: TokenStore {
        let inner = InMemoryTokenStore()
        let lookups = Mutex(0)
        func insertToken(_ principal: Principal, tokenHash: String) async throws {
            try await inner.insertToken(principal, tokenHash: tokenHash)
        }
        func principal(forTokenHash hash: String) async throws -> Principal? {
            lookups.withLock { $0 += 1 }
            return try await inner.principal(forTokenHash: hash)
        }
        func listTokens(tenant: String?) async throws -> [Principal] { try await inner.listTokens(tenant: tenant) }
        func revokeToken(id: UUID, at date: Date) async throws -> Bool { try await inner.revokeToken(id: id, at: date) }
        var count: Int { lookups.withLock { $0 } }
    }

    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        let start = ContinuousClock.now
        let offset = Mutex(Duration.zero)
        func advance(_ by: Duration) { offset.withLock { $0 += by } }
        var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
    }

    private func make(capacity: Int = 16) -> (CachingTokenStore, CountingStore, ManualClock) {
        let inner = CountingStore()
        let clock = ManualClock()
        let cache = CachingTokenStore(inner, lifetime: .seconds(1), capacity: capacity, now: { clock.now })
        return (cache, inner, clock)
    }

    @Test func aKnownTokenIsReadOnceALifetime() async throws {
        let (cache, inner, clock) = make()
        let principal = Principal(name: "ci", role: .submitter, tenant: "acme")
        try await cache.insertToken(principal, tokenHash: "h1")
        for _ in 0..<5 { #expect(try await cache.principal(forTokenHash: "h1")?.id == principal.id) }
        #expect(inner.count == 1)
        clock.advance(.milliseconds(999))
        _ = try await cache.principal(forTokenHash: "h1")
        #expect(inner.count == 1)
        clock.advance(.milliseconds(1))
        _ = try await cache.principal(forTokenHash: "h1")
        #expect(inner.count == 2)
    }

    @Test func unknownTokensAreNotRemembered() async throws {
        let (cache, inner, _) = make()
        #expect(try await cache.principal(forTokenHash: "later") == nil)
        #expect(try await cache.principal(forTokenHash: "later") == nil)
        #expect(inner.count == 2)
        #expect(cache.count == 0)
        // Created meanwhile (on another host, straight into the shared store): known at once.
        try await inner.insertToken(Principal(name: "new", role: .reader, tenant: "acme"), tokenHash: "later")
        #expect(try await cache.principal(forTokenHash: "later")?.name == "new")
    }

    @Test func aRevocationHereIsSeenAtOnceAndOneElsewhereWithinTheLifetime() async throws {
        let (cache, inner, clock) = make()
        let here = Principal(name: "here", role: .reader, tenant: "acme")
        let elsewhere = Principal(name: "elsewhere", role: .reader, tenant: "acme")
        try await cache.insertToken(here, tokenHash: "a")
        try await cache.insertToken(elsewhere, tokenHash: "b")
        _ = try await cache.principal(forTokenHash: "a")
        _ = try await cache.principal(forTokenHash: "b")

        #expect(try await cache.revokeToken(id: here.id, at: Date()))
        #expect(try await cache.principal(forTokenHash: "a")?.revokedAt != nil)

        // Revoked in the shared store by another host: the cached principal stands until it lapses.
        #expect(try await inner.revokeToken(id: elsewhere.id, at: Date()))
        #expect(try await cache.principal(forTokenHash: "b")?.revokedAt == nil)
        clock.advance(.seconds(1))
        #expect(try await cache.principal(forTokenHash: "b")?.revokedAt != nil)
    }

    @Test func itKeepsAtMostItsCapacity() async throws {
        let (cache, inner, clock) = make(capacity: 4)
        for i in 0..<10 {
            try await inner.insertToken(Principal(name: "t\(i)", role: .reader, tenant: "acme"), tokenHash: "h\(i)")
            #expect(try await cache.principal(forTokenHash: "h\(i)")?.name == "t\(i)")
            #expect(cache.count <= 4)
        }
        // Full at last: h8 and h9 (expired) and h0 and h1 (fresh). The expired ones make room
        // for h2, and the fresh ones stay.
        clock.advance(.seconds(2))
        for i in 0..<2 { _ = try await cache.principal(forTokenHash: "h\(i)") }
        #expect(cache.count == 4)
        _ = try await cache.principal(forTokenHash: "h2")
        #expect(cache.count == 3)
        let before = inner.count
        for i in 0..<3 { _ = try await cache.principal(forTokenHash: "h\(i)") }
        #expect(inner.count == before)
    }
}
