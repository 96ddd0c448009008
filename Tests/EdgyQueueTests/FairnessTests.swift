import EdgyJail
import EdgyPolicy
import EdgyQueue
import EdgyStore
import EdgyTestSupport
import Foundation
import Testing

/// Fair claiming end to end: real jails of `/bin/true`, one tenant's backlog in front of another's.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct FairnessTests {
    @Test func aSmallTenantIsNotStuckBehindABigOnesBacklog() async throws {
        let harness = try WorkerPoolTests.Harness(policies: [TestSupport.policy(["/bin/true"], name: "true")], workers: 2)
        let spec = TaskSpec(name: "t", policy: "true", maxAttempts: 1)
        try await harness.withRunningPool {
            var big: [UUID] = []
            for _ in 0..<1000 { big.append(try await harness.submit(spec, tenant: "big")) }
            var small: [UUID] = []
            for _ in 0..<10 { small.append(try await harness.submit(spec, tenant: "small")) }

            var smallFinished: [TaskRecord] = []
            for id in small { smallFinished.append(try await harness.finished(id, timeout: .seconds(40))) }
            #expect(smallFinished.allSatisfy { $0.status == .succeeded })
            let lastSmall = try #require(smallFinished.compactMap(\.finishedAt).max())

            // Of the big tenant's tasks, fewer than 100 finished before the small tenant's last.
            var bigFinishedBefore = 0
            for id in big {
                if let task = try await harness.store.task(id: id), let at = task.finishedAt, at <= lastSmall { bigFinishedBefore += 1 }
            }
            #expect(bigFinishedBefore < 100, "\(bigFinishedBefore) of the big tenant's tasks finished first")
            #expect(bigFinishedBefore > 0)
        }
    }
}
