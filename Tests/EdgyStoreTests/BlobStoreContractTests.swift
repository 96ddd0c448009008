import Testing

/// The `BlobStore` contract, every case against every store in `StoreFactory.all`.
@Suite("BlobStore contract")
struct BlobStoreContractTests {
    @Test(arguments: StoreFactory.all)
    func uploadsAreIdempotentAndDeduplicated(_ factory: StoreFactory) async throws {
        try await factory.run { try await BlobStoreContract(opened: $0).uploadsAreIdempotentAndDeduplicated() }
    }

    @Test(arguments: StoreFactory.all)
    func tenantsSeeOnlyTheirOwnBlobs(_ factory: StoreFactory) async throws {
        try await factory.run { try await BlobStoreContract(opened: $0).tenantsSeeOnlyTheirOwnBlobs() }
    }

    @Test(arguments: StoreFactory.all)
    func outputsAreStoredOnceAndReferencedByTheirTask(_ factory: StoreFactory) async throws {
        try await factory.run { try await BlobStoreContract(opened: $0).outputsAreStoredOnceAndReferencedByTheirTask() }
    }

    @Test(arguments: StoreFactory.all)
    func garbageCollectionDeletesABlobExactlyWhenItsLastTaskGoes(_ factory: StoreFactory) async throws {
        try await factory.run { try await BlobStoreContract(opened: $0).garbageCollectionDeletesABlobExactlyWhenItsLastTaskGoes() }
    }

    @Test(arguments: StoreFactory.all)
    func quotasCountBlobs(_ factory: StoreFactory) async throws {
        try await factory.run { try await BlobStoreContract(opened: $0).quotasCountBlobs() }
    }

    @Test(arguments: StoreFactory.all)
    func corruptedBlobsAreRefused(_ factory: StoreFactory) async throws {
        try await factory.run { try await BlobStoreContract(opened: $0).corruptedBlobsAreRefused() }
    }
}
