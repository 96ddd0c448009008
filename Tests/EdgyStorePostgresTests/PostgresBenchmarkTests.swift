import EdgyModel
import EdgyPostgresTestSupport
import EdgyStore
import EdgyStorePostgres
import EdgyTestSupport
import Foundation
import Testing

/// Claim latency and queue throughput on the test server; prints its numbers. Small enough to run
/// with the suite; `EDGY_PG_BENCH_TASKS` makes the throughput runs longer.
@Suite(.tags(.postgres), .requiresPostgres, .serialized, .timeLimit(.minutes(3)))
struct PostgresBenchmarkTests {
    @Test func claimLatency() async throws {
        try await PostgresTestServer.withStore { store in
            let count = 500
            for i in 0..<count { try await store.create(makeTask(created: Double(i) * 0.001), limits: QueueLimits()) }
            var samples: [Duration] = []
            let clock = ContinuousClock()
            for _ in 0..<count {
                let start = clock.now
                let claim = try await store.claim(worker: "bench", leaseDuration: .seconds(60), now: at(100))
                samples.append(clock.now - start)
                #expect(claim != nil)
            }
            samples.sort()
            let ms = { (d: Duration) in String(format: "%.3f", d.seconds * 1000) }
            print("postgres bench: claim latency over \(count) claims: median \(ms(samples[count / 2])) ms, p90 \(ms(samples[count * 9 / 10])) ms, p99 \(ms(samples[count * 99 / 100])) ms")
        }
    }

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
