import EdgyModel
import EdgyStore
import Foundation
import Testing

/// What every `DeliveryStore` must do, against memory, SQLite and PostgreSQL: a callback is stored
/// with its task, due only once the task has finished, leased to one claimer at a time, its tries
/// appended in order, and gone with its task.
struct DeliveryStoreContract {
    let opened: OpenedStore
    var tasks: any TaskStore { opened.tasks }
    var deliveries: any DeliveryStore { opened.tasks as! any DeliveryStore }

    func finish(_ task: TaskRecord, at seconds: Int64) async throws {
        let claim = try #require(try await tasks.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(seconds)))
        #expect(claim.task.id == task.id)
        #expect(try await tasks.finishAttempt(
            taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: AttemptReport(outcome: .exited, exitCode: 0),
            disposition: .succeeded, now: T.at(seconds + 1)))
    }

    func aDeliveryIsDueOnceItsTaskFinishesAndLeasedToOneClaimer() async throws {
        let task = T.task(at: 0)
        try await tasks.create(task, limits: QueueLimits(), callback: TaskCallback(url: "https://hooks.example/edgy", secret: "s3cret"))
        try await tasks.create(T.task(at: 1), limits: QueueLimits())  // no callback, no delivery
        let stored = try #require(try await deliveries.delivery(taskID: task.id))
        #expect(stored.url == "https://hooks.example/edgy" && stored.secret == "s3cret" && stored.tenant == "acme")
        #expect(stored.state == .pending && stored.attempts.isEmpty)
        // Not due while the task runs.
        #expect(try await deliveries.claimDeliveries(now: T.at(5), leaseUntil: T.at(35), limit: 10).isEmpty)

        try await finish(task, at: 10)
        let claimed = try await deliveries.claimDeliveries(now: T.at(12), leaseUntil: T.at(42), limit: 10)
        #expect(claimed.map(\.taskID) == [task.id])
        // Leased: another claimer does not get it until the lease ends.
        #expect(try await deliveries.claimDeliveries(now: T.at(13), leaseUntil: T.at(43), limit: 10).isEmpty)
        #expect(try await deliveries.claimDeliveries(now: T.at(42), leaseUntil: T.at(72), limit: 10).map(\.taskID) == [task.id])

        // A failed try with a next time: due again only then.
        let first = DeliveryAttempt(number: 1, at: T.at(42), statusCode: 500, error: "HTTP 500", durationMs: 3)
        try await deliveries.recordDelivery(taskID: task.id, attempt: first, state: .pending, nextAttemptAt: T.at(50))
        #expect(try await deliveries.claimDeliveries(now: T.at(49), leaseUntil: T.at(79), limit: 10).isEmpty)
        #expect(try await deliveries.claimDeliveries(now: T.at(50), leaseUntil: T.at(80), limit: 10).map(\.attempts) == [[first]])
        let second = DeliveryAttempt(number: 2, at: T.at(50), statusCode: 204, durationMs: 2)
        try await deliveries.recordDelivery(taskID: task.id, attempt: second, state: .delivered, nextAttemptAt: nil)
        let done = try #require(try await deliveries.delivery(taskID: task.id))
        #expect(done.state == .delivered && done.attempts == [first, second])
        #expect(try await deliveries.claimDeliveries(now: T.at(500), leaseUntil: T.at(530), limit: 10).isEmpty)
    }

    func aDeliveryGoesWithItsTask() async throws {
        let deleted = T.task(at: 0), purged = T.task(at: 1)
        for task in [deleted, purged] {
            try await tasks.create(task, limits: QueueLimits(), callback: TaskCallback(url: "https://hooks.example/x", secret: "k"))
        }
        #expect(try await tasks.delete(id: deleted.id))
        #expect(try await deliveries.delivery(taskID: deleted.id) == nil)
        try await finish(purged, at: 10)
        #expect(try await tasks.purgeFinished(before: T.at(100)) == 1)
        #expect(try await deliveries.delivery(taskID: purged.id) == nil)
    }
}

/// The `DeliveryStore` contract, every case against every store in `StoreFactory.all`.
@Suite("DeliveryStore contract")
struct DeliveryStoreContractTests {
    @Test(arguments: StoreFactory.all)
    func aDeliveryIsDueOnceItsTaskFinishesAndLeasedToOneClaimer(_ factory: StoreFactory) async throws {
        try await factory.run { try await DeliveryStoreContract(opened: $0).aDeliveryIsDueOnceItsTaskFinishesAndLeasedToOneClaimer() }
    }

    @Test(arguments: StoreFactory.all)
    func aDeliveryGoesWithItsTask(_ factory: StoreFactory) async throws {
        try await factory.run { try await DeliveryStoreContract(opened: $0).aDeliveryGoesWithItsTask() }
    }
}
