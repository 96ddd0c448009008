import EdgyStore
import Testing

/// The `TaskStore` contract, every case against every store in `StoreFactory.all`.
@Suite("TaskStore contract")
struct TaskStoreContractTests {
    @Test(arguments: StoreFactory.all)
    func createAndGet(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).createAndGet() }
    }

    @Test(arguments: StoreFactory.all)
    func createAndClaim(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).createAndClaim() }
    }

    @Test(arguments: StoreFactory.all)
    func largeTasksAreCreatedAndClaimedAsSmallOnes(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).largeTasksAreCreatedAndClaimedAsSmallOnes() }
    }

    @Test(arguments: StoreFactory.all)
    func createAndClaimHoldsTheRunningLimit(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).createAndClaimHoldsTheRunningLimit() }
    }

    @Test(arguments: StoreFactory.all)
    func queueLimits(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).queueLimits() }
    }

    @Test(arguments: StoreFactory.all)
    func listFilters(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).listFilters() }
    }

    @Test(arguments: StoreFactory.all)
    func listPagination(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).listPagination() }
    }

    @Test(arguments: StoreFactory.all)
    func extremeTimes(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).extremeTimes() }
    }

    @Test(arguments: StoreFactory.all)
    func claimIsFairAcrossTenants(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).claimIsFairAcrossTenants() }
    }

    @Test(arguments: StoreFactory.all)
    func tenantQuotas(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).tenantQuotas() }
    }

    @Test(arguments: StoreFactory.all)
    func claimOrder(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).claimOrder() }
    }

    @Test(arguments: StoreFactory.all)
    func claimRespectsTenantRunningLimit(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).claimRespectsTenantRunningLimit() }
    }

    @Test(arguments: StoreFactory.all)
    func concurrentClaimsNeverShareATask(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).concurrentClaimsNeverShareATask() }
    }

    @Test(arguments: StoreFactory.all)
    func renewLease(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).renewLease() }
    }

    @Test(arguments: StoreFactory.all)
    func finishAttemptDispositions(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).finishAttemptDispositions() }
    }

    @Test(arguments: StoreFactory.all)
    func reclaimLeases(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).reclaimLeases() }
    }

    @Test(arguments: StoreFactory.all)
    func requestCancel(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).requestCancel() }
    }

    @Test(arguments: StoreFactory.all)
    func delete(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).delete() }
    }

    @Test(arguments: StoreFactory.all)
    func events(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).events() }
    }

    @Test(arguments: StoreFactory.all)
    func purgeFinished(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).purgeFinished() }
    }

    @Test(arguments: StoreFactory.all)
    func activeCounts(_ factory: StoreFactory) async throws {
        try await factory.run { try await TaskStoreContract(store: $0.tasks).activeCounts() }
    }
}
