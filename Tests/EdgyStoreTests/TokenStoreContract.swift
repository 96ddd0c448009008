import EdgyAuth
import Foundation
import Testing

/// What every `TokenStore` must do.
struct TokenStoreContract {
    let store: any TokenStore

    func insertLookupListRevoke() async throws {
        let admin = Principal(name: "root", role: .admin, tenant: "ops", createdAt: T.at(0))
        let ci = Principal(
            name: "ci-runner", role: .submitter, tenant: "acme", policies: ["python", "node"], createdAt: T.at(1), expiresAt: T.at(1000),
            callbackURL: "https://ci.example/edgy-hook")
        let reader = Principal(name: "dash", role: .reader, tenant: "acme", policies: [], createdAt: T.at(2))
        let hashes = [admin.id: TokenSecret.hash(TokenSecret.generate()), ci.id: TokenSecret.hash("edgy_ci"), reader.id: TokenSecret.hash("edgy_dash")]
        // Inserted out of order; listed by creation time.
        for principal in [reader, admin, ci] { try await store.insertToken(principal, tokenHash: hashes[principal.id]!) }

        #expect(try await store.principal(forTokenHash: TokenSecret.hash("edgy_ci")) == ci)
        #expect(try await store.principal(forTokenHash: hashes[admin.id]!) == admin)
        #expect(try await store.principal(forTokenHash: hashes[reader.id]!) == reader)
        #expect(try await store.principal(forTokenHash: TokenSecret.hash("edgy_nope")) == nil)

        #expect(try await store.listTokens(tenant: "acme") == [ci, reader])
        #expect(try await store.listTokens(tenant: nil) == [admin, ci, reader])
        #expect(try await store.listTokens(tenant: "nobody") == [])

        #expect(try await store.revokeToken(id: ci.id, at: T.at(50)))
        #expect(try await !store.revokeToken(id: UUID(), at: T.at(50)))
        var revoked = ci
        revoked.revokedAt = T.at(50)
        // Revoked tokens are still found (the caller checks validity) and still listed.
        let found = try #require(try await store.principal(forTokenHash: TokenSecret.hash("edgy_ci")))
        #expect(found == revoked)
        #expect(!found.isValid(at: T.at(51)))
        #expect(try await store.listTokens(tenant: "acme") == [revoked, reader])
    }
}

@Suite("TokenStore contract")
struct TokenStoreContractTests {
    @Test(arguments: StoreFactory.all)
    func insertLookupListRevoke(_ factory: StoreFactory) async throws {
        try await factory.run { try await TokenStoreContract(store: $0.tokens).insertLookupListRevoke() }
    }
}
