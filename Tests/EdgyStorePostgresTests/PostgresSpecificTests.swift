import EdgyModel
import EdgyPostgresTestSupport
import EdgyStore
@testable import EdgyStorePostgres
import EdgyTestSupport
import Foundation
import PostgresNIO
import Testing

/// Polls `condition` until it holds or `timeout` passes.
func eventually(within timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The first notice for `id` on `notifier`, or nil after `timeout`. Subscribe before causing it.
func notice(of id: UUID, on stream: AsyncStream<UUID>, within timeout: Duration) async -> UUID? {
    await withTaskGroup(of: UUID?.self) { group in
        group.addTask {
            for await changed in stream where changed == id { return changed }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        return await group.next() ?? nil
    }
}

/// What only the PostgreSQL store does: several hosts on one database, LISTEN/NOTIFY, a database
/// that goes away, migrations, worker registration.
@Suite(.tags(.postgres), .requiresPostgres, .serialized, .timeLimit(.minutes(2)))
struct PostgresSpecificTests {
    /// The one-statement claim keeps a tenant's running count beside its turn: many claims at once
    /// from two hosts take exactly the limit, and every way out of `running` (finish, lease
    /// reclaimed, delete) gives the place back.
    @Test func theTenantLimitHoldsAcrossHostsClaimingAtOnce() async throws {
        try await PostgresTestServer.withStores(2) { stores, _ in
            for i in 0..<12 { try await stores[0].create(makeTask(created: Double(i) * 0.001), limits: QueueLimits()) }
            func claimAtOnce(_ count: Int, now: Date) async throws -> [ClaimedTask] {
                try await withThrowingTaskGroup(of: ClaimedTask?.self) { group in
                    for i in 0..<count {
                        group.addTask {
                            try await stores[i % 2].claim(worker: "w\(i % 2)", leaseDuration: .seconds(30), now: now, maxRunningPerTenant: 3)
                        }
                    }
                    return try await group.reduce(into: []) { if let claim = $1 { $0.append(claim) } }
                }
            }
            let first = try await claimAtOnce(24, now: at(100))
            #expect(first.count == 3, "\(first.count) claimed under a limit of 3")
            #expect(Set(first.map(\.task.id)).count == first.count)
            #expect(try await counts(stores[0], tenant: "acme") == [9, 3])

            // A finished attempt frees one place.
            #expect(try await stores[1].finishAttempt(
                taskID: first[0].task.id, attempt: first[0].attempt, worker: first[0].task.attempts.last!.worker,
                outcome: .exited, report: nil, disposition: .succeeded, now: at(101)))
            #expect(try await claimAtOnce(10, now: at(102)).count == 1)

            // Expired leases go back to the queue and free their places.
            let reclaimed = try await stores[0].reclaimLeases(expiredBefore: at(1000), ownedBy: nil, retryDelay: .zero)
            #expect(reclaimed.count == 3)
            #expect(try await counts(stores[0], tenant: "acme") == [11, 0])
            let again = try await claimAtOnce(10, now: at(1001))
            #expect(again.count == 3)

            // A deleted running task frees its place too.
            #expect(try await stores[0].delete(id: again[0].task.id))
            #expect(try await claimAtOnce(10, now: at(1002)).count == 1)
            #expect(try await counts(stores[0], tenant: "acme") == [7, 3])
        }
    }

    /// The tenants' counters (migration 9, kept by a trigger) against a count of the tasks, after
    /// creates, claims, output while running (left out of the counters, summed at the check), a
    /// finish, a retry, a lost lease, a delete and retention.
    @Test func tenantCountersMatchTheTasksThroughEveryChange() async throws {
        try await PostgresTestServer.withStores(1) { stores, _ in
            let store = stores[0]
            func scanned(_ tenant: String) async throws -> TenantUsage {
                let rows = try await store.client.query("""
                    SELECT count(*) FILTER (WHERE status = 'queued'), count(*), COALESCE(sum(record_bytes + output_bytes), 0)::bigint
                    FROM tasks WHERE tenant = \(tenant)
                    """).collect()
                let (queued, stored, bytes) = try rows[0].decode((Int64, Int64, Int64).self)
                return TenantUsage(queued: Int(queued), stored: Int(stored), bytes: bytes)
            }
            func expectCounted(_ step: String) async throws {
                for tenant in ["a", "b", "c"] {
                    #expect(try await store.tenantUsage(tenant: tenant) == (try await scanned(tenant)), "\(step): tenant \(tenant)")
                }
            }
            var tasks: [TaskRecord] = []
            for (index, tenant) in ["a", "a", "b", "a", "b", "c"].enumerated() {
                let task = makeTask(tenant: tenant, created: Double(index))
                tasks.append(task)
                try await store.create(task, limits: QueueLimits(maxStoredPerTenant: 100))
            }
            try await expectCounted("created")
            let first = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10)))
            let second = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10)))
            try await store.appendOutput(taskID: first.task.id, attempt: 1, kind: .stdout, data: "output", now: at(11))
            try await store.appendOutput(taskID: second.task.id, attempt: 1, kind: .stderr, data: "more output", now: at(11))
            try await expectCounted("running with output")
            let report = AttemptReport(outcome: .exited, exitCode: 0, stdout: Array("out".utf8))
            #expect(try await store.finishAttempt(taskID: first.task.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: .succeeded, now: at(12)))
            #expect(try await store.finishAttempt(taskID: second.task.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: .retry(notBefore: at(13)), now: at(12)))
            try await expectCounted("finished and retried")
            let third = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(1), now: at(20)))
            try await store.appendOutput(taskID: third.task.id, attempt: third.attempt, kind: .stdout, data: "lost", now: at(21))
            #expect(try await store.reclaimLeases(expiredBefore: at(30), ownedBy: nil, retryDelay: .zero).count == 1)
            try await expectCounted("lease lost")
            #expect(try await store.delete(id: tasks[5].id))
            #expect(try await store.purgeFinished(before: at(100)) == 1)
            try await expectCounted("deleted and purged")
            #expect(try await store.tenantUsage(tenant: "c") == TenantUsage(queued: 0, stored: 0, bytes: 0))
        }
    }

    @Test func migrateIsIdempotentAndConcurrent() async throws {
        try await PostgresTestServer.withStores(3) { stores, _ in
            // withStores migrated once already; again, from three hosts at once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            try await stores[1].create(makeTask(), limits: QueueLimits())
            #expect(try await stores[2].list(TaskQuery()).tasks.count == 1)
        }
    }

    @Test func notifyWakesAnotherHostWithinOneSecond() async throws {
        try await PostgresTestServer.withStores(2) { stores, _ in
            let (hostA, hostB) = (stores[0], stores[1])
            #expect(await eventually { hostB.isListening })
            for round in 0..<3 {
                // A task created on host A wakes idle workers on host B…
                let changes = hostB.notifier.changes(of: nil)
                let task = makeTask(created: Double(round))
                let start = ContinuousClock.now
                try await hostA.create(task, limits: QueueLimits())
                #expect(await notice(of: task.id, on: changes, within: .seconds(1)) == task.id)
                #expect(ContinuousClock.now - start < .seconds(1))
            }
            // …and output and status changes on host B wake readers of that task on host A.
            #expect(await eventually { hostA.isListening })
            let claim = try #require(try await hostB.claim(worker: "b", leaseDuration: .seconds(30), now: at(20)))
            let task = claim.task
            let readers = hostA.notifier.changes(of: task.id)
            try await hostB.appendOutput(taskID: task.id, attempt: claim.attempt, kind: .stdout, data: "hi", now: at(21))
            #expect(await notice(of: task.id, on: readers, within: .seconds(1)) == task.id)
            let more = hostA.notifier.changes(of: task.id)
            _ = try await hostB.finishAttempt(taskID: task.id, attempt: 1, worker: "b", outcome: .exited, report: nil, disposition: .succeeded, now: at(22))
            #expect(await notice(of: task.id, on: more, within: .seconds(1)) == task.id)
        }
    }

    /// Each NOTIFY says how the task changed, so another host's idle workers wake only for a task
    /// they can claim; readers of the task still hear every change. (`unknown` passes every filter,
    /// so a notice without its kind would reach the queued-only stream below.)
    @Test func noticesSayHowTheTaskChanged() async throws {
        try await PostgresTestServer.withStores(2) { stores, _ in
            let (hostA, hostB) = (stores[0], stores[1])
            #expect(await eventually { hostB.isListening })
            let task = makeTask(created: 0)
            func expectNotice(_ change: TaskNotifier.Change, after action: () async throws -> Void) async throws {
                let changes = hostB.notifier.changes(of: task.id, only: [change])
                try await action()
                #expect(await notice(of: task.id, on: changes, within: .seconds(1)) == task.id, "\(change)")
            }
            try await expectNotice(.queued) { try await hostA.create(task, limits: QueueLimits()) }
            let queuedOnly = hostB.notifier.changes(of: task.id, only: [.queued])
            try await expectNotice(.running) {
                _ = try #require(try await hostA.claim(worker: "a", leaseDuration: .seconds(30), now: at(1)))
            }
            try await expectNotice(.output) {
                try await hostA.appendOutput(taskID: task.id, attempt: 1, kind: .stdout, data: "hi", now: at(2))
            }
            try await expectNotice(.cancelRequested) { _ = try await hostA.requestCancel(id: task.id, now: at(3)) }
            try await expectNotice(.ended) {
                _ = try await hostA.finishAttempt(
                    taskID: task.id, attempt: 1, worker: "a", outcome: .cancelled, report: nil, disposition: .cancelled, now: at(4))
            }
            #expect(await notice(of: task.id, on: queuedOnly, within: .milliseconds(300)) == nil)
            try await expectNotice(.ended) { _ = try await hostA.delete(id: task.id) }
        }
        // A notice from an edgyd that does not name the change is `unknown`; junk is no notice.
        let id = UUID()
        #expect(PostgresTaskStore.notice(id.uuidString)! == (id, .unknown))
        #expect(PostgresTaskStore.notice("\(id.uuidString):queued")! == (id, .queued))
        #expect(PostgresTaskStore.notice("\(id.uuidString):later")! == (id, .unknown))
        #expect(PostgresTaskStore.notice("nonsense") == nil)
        for (change, _) in PostgresTaskStore.noticeKinds {
            #expect(PostgresTaskStore.notice(id.uuidString + PostgresTaskStore.noticeSuffix(change))! == (id, change))
        }
    }

    @Test func droppedConnectionsRecoverWithoutLosingTasks() async throws {
        try await PostgresTestServer.withStores(2) { stores, url in
            let (api, worker) = (stores[0], stores[1])
            let database = String(URLComponents(string: url)!.path.dropFirst())
            #expect(await eventually { api.isListening && worker.isListening })
            let before = (0..<6).map { makeTask(created: Double($0)) }
            for task in before { try await api.create(task, limits: QueueLimits()) }
            let held = try #require(try await worker.claim(worker: "w", leaseDuration: .seconds(300), now: at(10)))

            // Every connection of both hosts dies (a server restart, a network cut).
            #expect(try await PostgresTestServer.terminateConnections(to: database) >= 2)

            // Operations may fail while the pool notices; they succeed again soon after.
            let after = makeTask(created: 20)
            #expect(await eventually {
                do {
                    try await api.create(after, limits: QueueLimits())
                    return true
                } catch { return false }
            })
            // The worker carries on: its lease survived, and it claims the rest.
            #expect(await eventually {
                (try? await worker.renewLease(taskID: held.task.id, attempt: held.attempt, worker: "w", leaseDuration: .seconds(300), now: at(11))) == .held(cancelRequested: false)
            })
            #expect(try await worker.finishAttempt(taskID: held.task.id, attempt: held.attempt, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: at(12)))
            var claimed: Set<UUID> = [held.task.id]
            while let claim = try await worker.claim(worker: "w", leaseDuration: .seconds(300), now: at(30)) { claimed.insert(claim.task.id) }
            #expect(claimed == Set(before.map(\.id) + [after.id]))

            // Both hosts listen again, and a change on one wakes the other.
            #expect(await eventually { api.isListening && worker.isListening })
            let changes = worker.notifier.changes(of: nil)
            let late = makeTask(created: 40)
            try await api.create(late, limits: QueueLimits())
            #expect(await notice(of: late.id, on: changes, within: .seconds(1)) == late.id)
        }
    }

    @Test func databaseAwayAndBack() async throws {
        // A server of its own, since this test stops it.
        let directory = "/tmp/edgy-pg-away-\(getpid())-\(UUID().uuidString.prefix(8))"
        let script = PostgresTestServer.script
        let url = try shell(script, "start", directory, "--owner-pid", "\(getpid())")
        defer { _ = try? shell(script, "stop", directory) }
        var configuration = try PostgresStoreConfiguration(url: url)
        configuration.operationTimeout = .seconds(2)
        let store = PostgresTaskStore(configuration: configuration, logger: PostgresTestServer.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            let first = makeTask(created: 1)
            try await store.create(first, limits: QueueLimits())

            _ = try shell(script, "pause", directory)
            let start = ContinuousClock.now
            await #expect(throws: (any Error).self) { try await store.create(makeTask(created: 2), limits: QueueLimits()) }
            await #expect(throws: (any Error).self) { _ = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10)) }
            #expect(ContinuousClock.now - start < .seconds(6), "operations fail promptly while the database is away")
            #expect(await eventually(within: .seconds(5)) { !store.isListening })

            _ = try shell(script, "resume", directory)
            #expect(await eventually(within: .seconds(20)) {
                (try? await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10)))?.task.id == first.id
            })
            #expect(await eventually(within: .seconds(10)) { store.isListening })
        }
    }

    @Test func unreachableDatabaseThrows() async throws {
        var configuration = try PostgresStoreConfiguration(url: "postgres://postgres@127.0.0.1:1/none")
        configuration.operationTimeout = .seconds(1)
        let store = PostgresTaskStore(configuration: configuration, logger: PostgresTestServer.logger)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await store.run() }
            defer { group.cancelAll() }
            await #expect(throws: (any Error).self) { _ = try await store.task(id: UUID()) }
        }
    }

    @Test func configurationFromURL() throws {
        let configuration = try PostgresStoreConfiguration(url: "postgres://edgy:s%40cret@db.example:6543/edgy?sslmode=require")
        #expect(configuration.client.host == "db.example")
        #expect(configuration.client.port == 6543)
        #expect(configuration.client.username == "edgy")
        #expect(configuration.client.password == "s@cret")
        #expect(configuration.client.database == "edgy")
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "mysql://x@y/z") }
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "postgres://x@y/z?sslmode=sometimes") }
    }

    @Test func workerRegistration() async throws {
        try await PostgresTestServer.withStores(2) { stores, _ in
            let a = WorkerInfo(id: "host-a:1", host: "host-a", slots: 4, kernel: "6.1.0", cgroupVersion: 2, startedAt: at(1))
            let b = WorkerInfo(id: "host-b:1", host: "host-b", slots: 2, kernel: "5.10.0", cgroupVersion: nil, startedAt: at(2))
            try await stores[0].registerWorker(a)
            try await stores[1].registerWorker(b)
            #expect(try await stores[0].listWorkers() == [a, b])
            #expect(try await stores[1].heartbeatWorker(id: a.id, now: at(9)))
            #expect(try await !stores[1].heartbeatWorker(id: "nobody", now: at(9)))
            var expected = a
            expected.lastHeartbeat = at(9)
            #expect(try await stores[1].listWorkers() == [expected, b])
            // Registering again (a restart) replaces the row.
            let restarted = WorkerInfo(id: a.id, host: "host-a", slots: 8, kernel: "6.1.0", cgroupVersion: 2, startedAt: at(20))
            try await stores[0].registerWorker(restarted)
            #expect(try await stores[0].listWorkers() == [restarted, b])
            #expect(try await stores[0].removeWorker(id: b.id))
            #expect(try await stores[0].listWorkers() == [restarted])
        }
    }
}

