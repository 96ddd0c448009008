import EdgyAuth
import EdgyJail
import EdgyPolicy
import EdgyStore
import EdgyStorePostgres
import Foundation
import Testing

// The TaskStore / TokenStore contract, against PostgreSQL. The cases mirror the shared contract
// suite (Tests/EdgyStoreTests); once that suite takes a factory list, these become one more
// factory there: `PostgresTestServer.withStore`.

func counts(_ store: some TaskStore, tenant: String?) async throws -> [Int] {
    let (queued, running) = try await store.activeCounts(tenant: tenant)
    return [queued, running]
}

/// Times on whole milliseconds survive the store's microsecond rounding exactly.
func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: 1_700_000_000 + seconds) }

func makeTask(
    id: UUID = UUID(), tenant: String = "acme", name: String = "job", policy: String = "python",
    created: Double = 0, notBefore: Double? = nil, maxAttempts: Int = 3
) -> TaskRecord {
    TaskRecord(
        id: id, tenant: tenant,
        spec: TaskSpec(
            name: name, policy: policy,
            files: [TaskFile(path: "main.py", contents: Array("print('hi')\n".utf8)), TaskFile(path: "bin/run", contents: [0, 1, 255], mode: 0o755)],
            command: ["python3", "main.py"], stdin: Array("in".utf8), env: ["A": "1", "B": "two"],
            limits: { var l = LimitOverrides(); l.memoryMib = 64; l.wallTimeS = 1.5; return l }(),
            maxAttempts: maxAttempts),
        createdAt: at(created), notBefore: notBefore.map(at))
}

@Suite(.serialized, .timeLimit(.minutes(2)))
struct PostgresStoreTests {
    @Test func createAndGetRoundTrip() async throws {
        try await PostgresTestServer.withStore { store in
            let task = makeTask(created: 1.25)
            try await store.create(task, limits: QueueLimits())
            #expect(try await store.task(id: task.id) == task)
            #expect(try await store.task(id: UUID()) == nil)
            await #expect(throws: StoreError(.duplicateID, "a task with id \(task.id) exists")) {
                try await store.create(task, limits: QueueLimits())
            }
            let events = try await store.events(taskID: task.id, after: 0, limit: 10)
            #expect(events.map(\.kind) == [.status])
            #expect(events.first?.data == "queued")
            #expect(events.first?.at == task.createdAt)
        }
    }

    @Test func queueLimits() async throws {
        try await PostgresTestServer.withStore { store in
            let limits = QueueLimits(maxQueued: 3, maxQueuedPerTenant: 2)
            try await store.create(makeTask(tenant: "a"), limits: limits)
            try await store.create(makeTask(tenant: "a"), limits: limits)
            await #expect(throws: StoreError.self) { try await store.create(makeTask(tenant: "a"), limits: limits) }
            try await store.create(makeTask(tenant: "b"), limits: limits)
            do {
                try await store.create(makeTask(tenant: "c"), limits: limits)
                Issue.record("a fourth task was queued")
            } catch let error as StoreError {
                #expect(error.code == .queueFull)
            }
            // Running tasks do not count against the queue.
            _ = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10))
            try await store.create(makeTask(tenant: "c"), limits: limits)
            // No limits, no refusal.
            try await store.create(makeTask(tenant: "a"), limits: QueueLimits())
        }
    }

    @Test func listFiltersAndCursorPages() async throws {
        try await PostgresTestServer.withStore { store in
            var all: [TaskRecord] = []
            for i in 0..<7 {
                let task = makeTask(tenant: i % 2 == 0 ? "even" : "odd", name: "n\(i % 3)", policy: i < 4 ? "python" : "node", created: Double(i) * 0.001)
                all.append(task)
                try await store.create(task, limits: QueueLimits())
            }
            // Two tasks created at the same instant are ordered by id.
            let twinA = makeTask(id: UUID(uuidString: "00000000-0000-0000-0000-00000000000A")!, created: 3 * 0.001)
            let twinB = makeTask(id: UUID(uuidString: "00000000-0000-0000-0000-00000000000B")!, created: 3 * 0.001)
            for twin in [twinA, twinB] { try await store.create(twin, limits: QueueLimits()) }
            all += [twinA, twinB]
            let expected = all.sorted { ($0.createdAt, $0.id.uuidString) > ($1.createdAt, $1.id.uuidString) }

            var seen: [TaskRecord] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await store.list(TaskQuery(limit: 4, cursor: cursor))
                seen += page.tasks
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 10
            #expect(seen.map(\.id) == expected.map(\.id))
            #expect(pages == 3)

            #expect(try await store.list(TaskQuery(tenant: "odd")).tasks.map(\.id) == expected.filter { $0.tenant == "odd" }.map(\.id))
            #expect(try await store.list(TaskQuery(policy: "node")).tasks.count == 3)
            #expect(try await store.list(TaskQuery(name: "n1")).tasks.map(\.id) == expected.filter { $0.spec.name == "n1" }.map(\.id))
            #expect(try await store.list(TaskQuery(status: .running)).tasks.isEmpty)
            #expect(try await store.list(TaskQuery(tenant: "even", status: .queued, policy: "python", name: "n0")).tasks.map(\.id) == [all[0].id])
            let exact = try await store.list(TaskQuery(limit: expected.count))
            #expect(exact.tasks.count == expected.count && exact.nextCursor == nil)
            // A cursor from the in-memory encoding is understood.
            let from = TaskCursor(createdAt: expected[2].createdAt, id: expected[2].id).encoded
            #expect(try await store.list(TaskQuery(limit: 100, cursor: from)).tasks.map(\.id) == expected.dropFirst(3).map(\.id))
        }
    }

    /// Issue 6: a tenant at its running limit is passed over; its tasks wait, others' run.
    @Test func claimRespectsTenantRunningLimit() async throws {
        try await PostgresTestServer.withStore { store in
            let a1 = makeTask(tenant: "acme", created: 1)
            let a2 = makeTask(tenant: "acme", created: 2)
            let g1 = makeTask(tenant: "globex", created: 3)
            for task in [a1, a2, g1] { try await store.create(task, limits: QueueLimits()) }
            #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10), maxRunningPerTenant: 1)?.task.id == a1.id)
            #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10), maxRunningPerTenant: 1)?.task.id == g1.id)
            #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10), maxRunningPerTenant: 1) == nil)
            #expect(try await store.finishAttempt(
                taskID: a1.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: at(11)))
            #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(12), maxRunningPerTenant: 1)?.task.id == a2.id)
        }
    }

    /// Concurrent claims (as from several hosts) never take a tenant past its running limit.
    @Test func concurrentClaimsKeepTheTenantRunningLimit() async throws {
        try await PostgresTestServer.withStore { store in
            for n in 0..<12 { try await store.create(makeTask(tenant: "acme", created: Double(n)), limits: QueueLimits()) }
            let claimed = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<12 {
                    group.addTask {
                        try await store.claim(worker: "w\(n)", leaseDuration: .seconds(30), now: at(100), maxRunningPerTenant: 3) == nil ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(claimed == 3)
            #expect(try await counts(store, tenant: "acme") == [9, 3])
        }
    }

    @Test func claimsOldestClaimableFirst() async throws {
        try await PostgresTestServer.withStore { store in
            let later = makeTask(created: 1)
            let earlier = makeTask(created: 2, notBefore: 0.5)
            let future = makeTask(created: 0, notBefore: 100)
            for task in [later, earlier, future] { try await store.create(task, limits: QueueLimits()) }
            let first = try #require(try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: at(10)))
            #expect(first.task.id == earlier.id)
            #expect(first.attempt == 1)
            #expect(first.task.status == .running)
            #expect(first.task.attempts == [AttemptRecord(number: 1, worker: "w1", startedAt: at(10))])
            #expect(try await store.task(id: earlier.id) == first.task)
            #expect(try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: at(10))?.task.id == later.id)
            #expect(try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: at(10)) == nil)
            #expect(try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: at(100))?.task.id == future.id)
            let events = try await store.events(taskID: earlier.id, after: 0, limit: 10)
            #expect(events.map(\.data) == ["queued", "running"])
            #expect(events.last?.attempt == 1)
        }
    }

    @Test func concurrentClaimsNeverShareATask() async throws {
        try await PostgresTestServer.withStores(8) { stores, _ in
            let count = 80
            for i in 0..<count { try await stores[0].create(makeTask(created: Double(i) * 0.001), limits: QueueLimits()) }
            let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for (n, store) in stores.enumerated() {
                    group.addTask {
                        var mine: [UUID] = []
                        while let claim = try await store.claim(worker: "w\(n)", leaseDuration: .seconds(30), now: at(10)) {
                            mine.append(claim.task.id)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [[UUID]]()) { $0.append($1) }
            }
            let all = claimed.flatMap { $0 }
            #expect(all.count == count)
            #expect(Set(all).count == count)
            #expect(claimed.filter { !$0.isEmpty }.count > 1, "claims were spread over the clients")
            #expect(try await counts(stores[0], tenant: nil) == [0, count])
        }
    }

    @Test func renewLease() async throws {
        try await PostgresTestServer.withStore { store in
            let task = makeTask()
            try await store.create(task, limits: QueueLimits())
            let claim = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(10), now: at(1)))
            #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w", leaseDuration: .seconds(10), now: at(5)) == .held(cancelRequested: false))
            // Renewed to 15: not expired at 12.
            #expect(try await store.reclaimLeases(expiredBefore: at(12), ownedBy: nil, retryDelay: .zero).isEmpty)
            #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "other", leaseDuration: .seconds(10), now: at(5)) == .lost)
            #expect(try await store.renewLease(taskID: task.id, attempt: 2, worker: "w", leaseDuration: .seconds(10), now: at(5)) == .lost)
            _ = try await store.requestCancel(id: task.id, now: at(6))
            #expect(try await store.renewLease(taskID: task.id, attempt: claim.attempt, worker: "w", leaseDuration: .seconds(10), now: at(7)) == .held(cancelRequested: true))
            #expect(try await store.reclaimLeases(expiredBefore: at(100), ownedBy: nil, retryDelay: .zero) == [task.id])
            #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w", leaseDuration: .seconds(10), now: at(101)) == .lost)

            let deleted = makeTask()
            try await store.create(deleted, limits: QueueLimits())
            _ = try await store.claim(worker: "w", leaseDuration: .seconds(10), now: at(200))
            #expect(try await store.delete(id: deleted.id))
            #expect(try await store.renewLease(taskID: deleted.id, attempt: 1, worker: "w", leaseDuration: .seconds(10), now: at(201)) == .lost)
        }
    }

    @Test(arguments: [AttemptDisposition.succeeded, .failed, .cancelled, .retry(notBefore: at(50))])
    func finishAttempt(disposition: AttemptDisposition) async throws {
        try await PostgresTestServer.withStore { store in
            let task = makeTask()
            try await store.create(task, limits: QueueLimits())
            _ = try await store.claim(worker: "w", leaseDuration: .seconds(10), now: at(1))
            let report = AttemptReport(outcome: .exited, exitCode: 3, wallMs: 12, stdout: Array("out".utf8), startedAt: 1.5, finishedAt: 2.25, policyName: "python")
            #expect(try await !store.finishAttempt(taskID: task.id, attempt: 1, worker: "intruder", outcome: .exited, report: report, disposition: disposition, now: at(2)))
            #expect(try await !store.finishAttempt(taskID: task.id, attempt: 2, worker: "w", outcome: .exited, report: report, disposition: disposition, now: at(2)))
            #expect(try await store.task(id: task.id)?.status == .running)
            #expect(try await store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: disposition, now: at(2)))
            #expect(try await !store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: disposition, now: at(3)))

            let stored = try #require(try await store.task(id: task.id))
            #expect(stored.status == disposition.status)
            #expect(stored.attempts == [AttemptRecord(number: 1, worker: "w", startedAt: at(1), finishedAt: at(2), outcome: .exited, report: report)])
            #expect(stored.lastReport == report)
            #expect(stored.updatedAt == at(2))
            #expect(stored.cancelRequested == false)
            if case .retry(let notBefore) = disposition {
                #expect(stored.finishedAt == nil)
                #expect(stored.notBefore == notBefore)
                #expect(try await store.claim(worker: "w", leaseDuration: .seconds(10), now: at(49)) == nil)
                #expect(try await store.claim(worker: "w2", leaseDuration: .seconds(10), now: at(50))?.attempt == 2)
            } else {
                #expect(stored.finishedAt == at(2))
            }
            #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w", leaseDuration: .seconds(10), now: at(3)) == .lost)
            let statuses = try await store.events(taskID: task.id, after: 0, limit: 10).map(\.data)
            #expect(Array(statuses.prefix(3)) == ["queued", "running", disposition.status.rawValue])
        }
    }

    @Test func reclaimLeases() async throws {
        try await PostgresTestServer.withStore { store in
            let expiring = makeTask(created: 0)
            let held = makeTask(created: 1)
            let exhausted = makeTask(created: 2, maxAttempts: 1)
            let cancelling = makeTask(created: 3)
            for task in [expiring, held, exhausted, cancelling] { try await store.create(task, limits: QueueLimits()) }
            _ = try await store.claim(worker: "dead", leaseDuration: .seconds(5), now: at(10))      // expiring, until 15
            _ = try await store.claim(worker: "alive", leaseDuration: .seconds(500), now: at(10))   // held
            _ = try await store.claim(worker: "dead", leaseDuration: .seconds(5), now: at(10))      // exhausted
            _ = try await store.claim(worker: "alive", leaseDuration: .seconds(5), now: at(10))     // cancelling
            _ = try await store.requestCancel(id: cancelling.id, now: at(11))

            #expect(try await store.reclaimLeases(expiredBefore: at(15), ownedBy: nil, retryDelay: .seconds(7)).isEmpty)
            let reclaimed = try await store.reclaimLeases(expiredBefore: at(16), ownedBy: nil, retryDelay: .seconds(7))
            #expect(Set(reclaimed) == [expiring.id, exhausted.id, cancelling.id])

            let requeued = try #require(try await store.task(id: expiring.id))
            #expect(requeued.status == .queued)
            #expect(requeued.notBefore == at(23))
            #expect(requeued.finishedAt == nil)
            #expect(requeued.attempts.map(\.outcome) == [.lost])
            #expect(requeued.attempts.first?.finishedAt == at(16))
            #expect(try await store.task(id: exhausted.id)?.status == .failed)
            #expect(try await store.task(id: exhausted.id)?.finishedAt == at(16))
            #expect(try await store.task(id: cancelling.id)?.status == .cancelled)
            #expect(try await store.task(id: held.id)?.status == .running)
            let lastEvent = try #require(try await store.events(taskID: expiring.id, after: 0, limit: 10).last)
            #expect(lastEvent.data == "queued" && lastEvent.attempt == 1)
            // The old holder's lease is gone.
            #expect(try await !store.finishAttempt(taskID: expiring.id, attempt: 1, worker: "dead", outcome: .exited, report: nil, disposition: .succeeded, now: at(17)))

            // By owner: a restarted daemon takes back its unexpired leases.
            #expect(try await store.reclaimLeases(expiredBefore: at(17), ownedBy: "alive", retryDelay: .zero) == [held.id])
            #expect(try await store.task(id: held.id)?.status == .queued)
            #expect(try await store.claim(worker: "new", leaseDuration: .seconds(5), now: at(22))?.task.id == held.id)
            #expect(try await store.claim(worker: "new", leaseDuration: .seconds(5), now: at(23))?.attempt == 2)
        }
    }

    @Test func requestCancel() async throws {
        try await PostgresTestServer.withStore { store in
            let queued = makeTask(created: 1)
            let running = makeTask(created: 0)
            for task in [queued, running] { try await store.create(task, limits: QueueLimits()) }
            _ = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(2))

            let cancelled = try #require(try await store.requestCancel(id: queued.id, now: at(3)))
            #expect(cancelled.status == .cancelled && cancelled.finishedAt == at(3) && cancelled.updatedAt == at(3))
            #expect(try await store.task(id: queued.id) == cancelled)
            #expect(try await store.events(taskID: queued.id, after: 0, limit: 10).map(\.data) == ["queued", "cancelled"])

            let requested = try #require(try await store.requestCancel(id: running.id, now: at(4)))
            #expect(requested.status == .running && requested.cancelRequested)
            #expect(try await store.task(id: running.id) == requested)
            #expect(try await store.finishAttempt(taskID: running.id, attempt: 1, worker: "w", outcome: .signaled, report: nil, disposition: .cancelled, now: at(5)))
            let finished = try #require(try await store.task(id: running.id))
            #expect(finished.status == .cancelled && !finished.cancelRequested)
            #expect(try await store.requestCancel(id: running.id, now: at(6)) == finished)
            #expect(try await store.requestCancel(id: UUID(), now: at(6)) == nil)
        }
    }

    @Test func deleteRemovesTaskAndEvents() async throws {
        try await PostgresTestServer.withStore { store in
            let task = makeTask()
            try await store.create(task, limits: QueueLimits())
            try await store.appendOutput(taskID: task.id, attempt: 1, kind: .stdout, data: "x", now: at(1))
            #expect(try await store.delete(id: task.id))
            #expect(try await !store.delete(id: task.id))
            #expect(try await store.task(id: task.id) == nil)
            #expect(try await store.events(taskID: task.id, after: 0, limit: 10).isEmpty)
        }
    }

    @Test func eventsInOrder() async throws {
        try await PostgresTestServer.withStore { store in
            let task = makeTask()
            try await store.create(task, limits: QueueLimits())
            let claim = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(1)))
            for i in 0..<5 {
                try await store.appendOutput(taskID: task.id, attempt: claim.attempt, kind: i % 2 == 0 ? .stdout : .stderr, data: "line \(i)\n", now: at(2 + Double(i)))
            }
            try await store.appendOutput(taskID: UUID(), attempt: 1, kind: .stdout, data: "nobody", now: at(2))
            _ = try await store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: at(9))
            let events = try await store.events(taskID: task.id, after: 0, limit: 100)
            #expect(events.map(\.kind) == [.status, .status, .stdout, .stderr, .stdout, .stderr, .stdout, .status])
            #expect(events.map(\.sequence) == events.map(\.sequence).sorted())
            #expect(Set(events.map(\.sequence)).count == events.count)
            #expect(events[2] == TaskEvent(sequence: events[2].sequence, taskID: task.id, kind: .stdout, attempt: 1, data: "line 0\n", at: at(2)))
            #expect(events.last?.data == "succeeded")
            let tail = try await store.events(taskID: task.id, after: events[3].sequence, limit: 2)
            #expect(tail == Array(events[4..<6]))
            #expect(try await store.events(taskID: task.id, after: events.last!.sequence, limit: 10).isEmpty)
        }
    }

    @Test func purgeFinished() async throws {
        try await PostgresTestServer.withStore { store in
            let old = makeTask(created: 0)
            let recent = makeTask(created: 1)
            let queued = makeTask(created: 2)
            for task in [old, recent, queued] { try await store.create(task, limits: QueueLimits()) }
            _ = try await store.requestCancel(id: old.id, now: at(10))
            _ = try await store.requestCancel(id: recent.id, now: at(30))
            #expect(try await store.purgeFinished(before: at(20)) == 1)
            #expect(try await store.task(id: old.id) == nil)
            #expect(try await store.events(taskID: old.id, after: 0, limit: 10).isEmpty)
            #expect(try await store.task(id: recent.id) != nil)
            #expect(try await store.purgeFinished(before: at(1000)) == 1)
            #expect(try await store.task(id: queued.id) != nil)
        }
    }

    @Test func activeCounts() async throws {
        try await PostgresTestServer.withStore { store in
            for (i, tenant) in ["a", "a", "a", "b", "b"].enumerated() {
                try await store.create(makeTask(tenant: tenant, created: Double(i)), limits: QueueLimits())
            }
            _ = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10))   // an "a"
            _ = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: at(10))   // an "a"
            #expect(try await counts(store, tenant: nil) == [3, 2])
            #expect(try await counts(store, tenant: "a") == [1, 2])
            #expect(try await counts(store, tenant: "b") == [2, 0])
            #expect(try await counts(store, tenant: "nobody") == [0, 0])
        }
    }

    @Test func tokens() async throws {
        try await PostgresTestServer.withStore { store in
            let admin = Principal(name: "root", role: .admin, tenant: "ops", createdAt: at(1))
            let ci = Principal(name: "ci", role: .submitter, tenant: "acme", policies: ["python", "node"], createdAt: at(2), expiresAt: at(1000))
            try await store.insertToken(admin, tokenHash: TokenSecret.hash("a"))
            try await store.insertToken(ci, tokenHash: TokenSecret.hash("b"))
            #expect(try await store.principal(forTokenHash: TokenSecret.hash("a")) == admin)
            #expect(try await store.principal(forTokenHash: TokenSecret.hash("b")) == ci)
            #expect(try await store.principal(forTokenHash: TokenSecret.hash("c")) == nil)
            #expect(try await store.listTokens(tenant: nil) == [admin, ci])
            #expect(try await store.listTokens(tenant: "acme") == [ci])
            #expect(try await store.revokeToken(id: ci.id, at: at(5)))
            #expect(try await !store.revokeToken(id: UUID(), at: at(5)))
            let revoked = try #require(try await store.principal(forTokenHash: TokenSecret.hash("b")))
            #expect(revoked.revokedAt == at(5))
            #expect(!revoked.isValid(at: at(6)))
        }
    }
}
