import EdgyModel
import EdgyPostgresTestSupport
import EdgyStore
import EdgyStorePostgres
import EdgyTestSupport
import Foundation
import Testing

/// Queue throughput on the test server; prints its numbers. Small enough to run with the suite;
/// `EDGY_PG_BENCH_TASKS` makes the runs longer. (Claim latency: `scripts/bench-claim`.)
@Suite(.tags(.postgres), .requiresPostgres, .serialized, .timeLimit(.minutes(3)))
struct PostgresBenchmarkTests {
    @Test(arguments: [1, 2, 3])
    func createClaimFinishThroughput(workers: Int) async throws {
        let total = Int(ProcessInfo.processInfo.environment["EDGY_PG_BENCH_TASKS"] ?? "") ?? 600
        try await PostgresTestServer.withStores(workers) { stores, _ in
            let clock = ContinuousClock()
            let start = clock.now
            let finished = try await withThrowingTaskGroup(of: Int.self) { group in
                for (n, store) in stores.enumerated() {
                    group.addTask {
                        var done = 0
                        for i in 0..<(total / workers) {
                            try await store.create(makeTask(created: Double(i) * 0.001), limits: QueueLimits())
                            if let claim = try await store.claim(worker: "w\(n)", leaseDuration: .seconds(60), now: at(100)) {
                                let ok = try await store.finishAttempt(
                                    taskID: claim.task.id, attempt: claim.attempt, worker: "w\(n)", outcome: .exited, report: nil,
                                    disposition: .succeeded, now: at(101))
                                if ok { done += 1 }
                            }
                        }
                        // What another worker created and nobody took yet.
                        while let claim = try await store.claim(worker: "w\(n)", leaseDuration: .seconds(60), now: at(100)) {
                            if try await store.finishAttempt(
                                taskID: claim.task.id, attempt: claim.attempt, worker: "w\(n)", outcome: .exited, report: nil,
                                disposition: .succeeded, now: at(101)) { done += 1 }
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
            let elapsed = clock.now - start
            let expected = (total / workers) * workers
            #expect(finished == expected)
            print("postgres bench: create+claim+finish, \(workers) store instance(s): \(finished) tasks in \(String(format: "%.2f", elapsed.seconds)) s = \(String(format: "%.0f", Double(finished) / elapsed.seconds)) tasks/s")
        }
    }
}
