import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import Testing

/// What every `TaskStore` must do, written once against the protocol. `TaskStoreContractTests`
/// runs each case against every `StoreFactory`; the cases know nothing of any implementation.
///
/// Times are whole microseconds (`T.at`): stores keep microseconds, so such a `Date` reads back
/// equal to the one written.
struct TaskStoreContract {
    let store: any TaskStore

    // MARK: - Create and read

    func createAndGet() async throws {
        let binary = (0...255).map { UInt8($0) } + [0, 0, 0xFF, 0xFE]
        let report = AttemptReport(
            outcome: .exited, exitCode: 3, wallMs: 12, cpuUserMs: 4, cpuSysMs: 1, maxRssKib: 2048, memoryPeakBytes: 4_194_304,
            pidsPeak: 2, stdout: binary, stderr: Array("err\n".utf8) + [0xC3, 0x28], stdoutTruncatedBytes: 7,
            startedAt: 1_800_000_000.25, finishedAt: 1_800_000_000.5, policyName: "python", policyDigest: "sha256:abc")
        let spec = TaskSpec(
            name: "full", policy: "python",
            files: [
                TaskFile(path: "main.py", contents: Array("print('hi')\n".utf8)),
                TaskFile(path: "data/blob.bin", contents: binary, mode: 0o600),
                TaskFile(path: "run.sh", contents: Array("#!/bin/sh\n".utf8), mode: 0o755),
                TaskFile(path: "empty", contents: []),
            ],
            command: ["python3", "main.py", "--flag", "ünïcode"],
            stdin: [0, 1, 2, 0xFF, 10],
            env: ["A": "1", "LANG": "C.UTF-8", "EMPTY": ""],
            limits: LimitOverrides(wallTimeS: 1.5, memoryMib: 64, pids: 8, stdoutKib: 16, outputOverflow: .kill),
            maxAttempts: 5)
        let task = TaskRecord(
            id: UUID(), tenant: "acme", spec: spec, status: .failed, createdAt: T.at(0), updatedAt: T.at(9),
            finishedAt: T.at(9), notBefore: T.at(4), cancelRequested: false,
            attempts: [
                AttemptRecord(number: 1, worker: "w1", startedAt: T.at(1), finishedAt: T.at(2), outcome: .lost),
                AttemptRecord(number: 2, worker: "w2", startedAt: T.at(5), finishedAt: T.at(9), outcome: .exited, report: report),
            ])
        try await store.create(task, limits: QueueLimits())
        #expect(try await store.task(id: task.id) == task)

        // A multi-step task, and its report of steps and graded cases.
        var graded = AttemptReport(outcome: .exited, exitCode: 0, policyName: "c")
        let caseReport = CaseReport(
            index: 1, name: "second", verdict: .wrongAnswer, outcome: .exited, exitCode: 0, detail: "line 1: expected \"3\", got \"4\"",
            wallMs: 3, cpuMs: 1, memoryPeakBytes: 900_000, stdout: "4\n", stdoutOmittedBytes: 0)
        var summary = CasesSummary(total: 3)
        summary.add(CaseReport(index: 0, name: nil, verdict: .accepted, outcome: .exited), step: "run")
        summary.add(caseReport, step: "run")
        graded.steps = [
            StepReport(name: "dependencies", kind: .dependencies, status: .succeeded, dependencies: DependencyReport(key: "k", source: .cached)),
            StepReport(name: "build", kind: .run, status: .succeeded, report: AttemptReport(outcome: .exited, exitCode: 0, policyName: "c")),
            StepReport(name: "run", kind: .cases, status: .failed, cases: [caseReport], summary: summary),
            StepReport(name: "after", kind: .run, status: .skipped),
        ]
        graded.cases = summary
        let stepped = TaskRecord(
            tenant: "acme",
            spec: TaskSpec(
                name: "steps", policy: "c", files: [TaskFile(path: "main.c", contents: [])], maxAttempts: 1,
                steps: [
                    StepSpec(name: "build", command: ["gcc", "main.c"], stdin: [0, 0xFF], limits: LimitOverrides(wallTimeS: 2), continueOnFailure: true),
                    StepSpec(name: "run", kind: .cases, stopOnFirstFailure: true, cases: [
                        CaseSpec(name: "one", stdin: Array("1 2\n".utf8), expectedStdout: Array("3\n".utf8)),
                        CaseSpec(stdin: [], expectedStdout: [0xC3, 0x28], comparator: .float(tolerance: 0.5)),
                        CaseSpec(expectedStdout: Array(#"\d+"#.utf8), comparator: .regex),
                        CaseSpec(expectedStdout: [], comparator: .trim),
                    ]),
                ]),
            status: .failed, createdAt: T.at(0), updatedAt: T.at(3), finishedAt: T.at(3),
            attempts: [AttemptRecord(number: 1, worker: "w", startedAt: T.at(1), finishedAt: T.at(3), outcome: .exited, report: graded)])
        try await store.create(stepped, limits: QueueLimits())
        #expect(try await store.task(id: stepped.id) == stepped)

        // The simplest task reads back equal too (no command, nothing optional).
        let plain = T.task(name: "plain", at: 1)
        try await store.create(plain, limits: QueueLimits())
        #expect(try await store.task(id: plain.id) == plain)

        // What the API reads: the same records and pages without the inputs' bytes (files keep
        // their sizes), which a list of many large tasks would otherwise load whole.
        for record in [task, stepped, plain] {
            #expect(try await store.taskSummary(id: record.id) == record.summary)
        }
        #expect(task.summary.spec.files.map(\.size) == task.spec.files.map(\.contents.count))
        #expect(task.summary.spec.files.allSatisfy { $0.contents.isEmpty } && task.summary.spec.stdin.isEmpty)
        #expect(try await store.taskSummary(id: UUID()) == nil)
        var query = TaskQuery(limit: 10)
        let full = try await store.list(query)
        query.summaries = true
        let summaries = try await store.list(query)
        #expect(full.tasks.count == 3)
        #expect(summaries.tasks == full.tasks.map(\.summary))

        #expect(try await store.task(id: UUID()) == nil)
        do {
            try await store.create(plain, limits: QueueLimits())
            Issue.record("a duplicate id was accepted")
        } catch let error as StoreError {
            #expect(error.code == .duplicateID)
        }
    }

    func queueLimits() async throws {
        let limits = QueueLimits(maxQueued: 3, maxQueuedPerTenant: 2)
        try await store.create(T.task(tenant: "a", at: 0), limits: limits)
        try await store.create(T.task(tenant: "a", at: 1), limits: limits)
        try await expectQueueFull { try await store.create(T.task(tenant: "a", at: 2), limits: limits) }
        try await store.create(T.task(tenant: "b", at: 3), limits: limits)
        try await expectQueueFull { try await store.create(T.task(tenant: "c", at: 4), limits: limits) }
        #expect(try await store.activeCounts(tenant: nil) == (3, 0))

        // Running tasks do not count against the queue.
        let claimed = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        #expect(claimed.task.tenant == "a")
        try await store.create(T.task(tenant: "a", at: 5), limits: limits)
        try await expectQueueFull { try await store.create(T.task(tenant: "a", at: 6), limits: limits) }
        // No limits: anything goes.
        try await store.create(T.task(tenant: "a", at: 7), limits: QueueLimits())
        #expect(try await store.activeCounts(tenant: "a") == (3, 1))
    }

    /// Per-tenant stored-task and byte quotas, checked with the insert; usage counts files, stdin,
    /// reports' output and output events, and drops when tasks are deleted or purged.
    func tenantQuotas() async throws {
        func sized(_ tenant: String, _ bytes: Int, at seconds: Int64) -> TaskRecord {
            var task = T.task(tenant: tenant, at: seconds)
            task.spec.files = [TaskFile(path: "blob", contents: Array(repeating: 7, count: bytes))]
            task.spec.stdin = [1, 2, 3, 4]
            return task
        }
        let bytesLimit = QueueLimits(maxBytesPerTenant: 300)
        let first = sized("acme", 96, at: 0)
        try await store.create(first, limits: bytesLimit)
        #expect(try await store.tenantUsage(tenant: "acme") == TenantUsage(queued: 1, stored: 1, bytes: 100))
        try await store.create(sized("acme", 96, at: 1), limits: bytesLimit)
        // 200 used: a third 100-byte task fits exactly; a fourth does not.
        let third = sized("acme", 96, at: 2)
        try await store.create(third, limits: bytesLimit)
        try await expectQuota("tenant_max_bytes") { try await store.create(sized("acme", 0, at: 3), limits: bytesLimit) }
        // Other tenants have their own quota.
        try await store.create(sized("globex", 296, at: 4), limits: bytesLimit)

        // Output counts: events and the report's output.
        #expect(try await store.delete(id: third.id))
        let claim = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        #expect(claim.task.id == first.id)
        try await store.appendOutput(taskID: first.id, attempt: 1, kind: .stdout, data: "hello", now: T.at(11))
        #expect(try await store.tenantUsage(tenant: "acme").bytes == 205)
        // A NUL in output text is taken by every store (PostgreSQL text cannot hold it as such).
        try await store.appendOutput(taskID: first.id, attempt: 1, kind: .stderr, data: "", now: T.at(11))
        let report = AttemptReport(outcome: .exited, exitCode: 0, stdout: Array("hello".utf8), stderr: Array("e".utf8))
        #expect(try await store.finishAttempt(
            taskID: first.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: .succeeded, now: T.at(12)))
        #expect(try await store.tenantUsage(tenant: "acme") == TenantUsage(queued: 1, stored: 2, bytes: 211))
        try await expectQuota("tenant_max_bytes") { try await store.create(sized("acme", 86, at: 13), limits: bytesLimit) }
        try await store.create(sized("acme", 85, at: 14), limits: bytesLimit)

        // Retention frees the finished task's bytes.
        #expect(try await store.purgeFinished(before: T.at(100)) == 1)
        #expect(try await store.tenantUsage(tenant: "acme") == TenantUsage(queued: 2, stored: 2, bytes: 189))

        // Stored tasks, in any status.
        let countLimit = QueueLimits(maxStoredPerTenant: 3)
        try await store.create(T.task(tenant: "acme", at: 20), limits: countLimit)
        try await expectQuota("tenant_max_stored") { try await store.create(T.task(tenant: "acme", at: 21), limits: countLimit) }
        try await store.create(T.task(tenant: "initech", at: 22), limits: countLimit)
        #expect(try await store.tenantUsage(tenant: "nobody") == TenantUsage(queued: 0, stored: 0, bytes: 0))
    }

    private func expectQuota(_ quota: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
            Issue.record("expected quota_exceeded for \(quota)")
        } catch let error as StoreError {
            #expect(error.code == .quotaExceeded)
            #expect(error.quota == quota)
        }
    }

    // MARK: - List

    func listFilters() async throws {
        let a1 = T.task(tenant: "a", name: "build", policy: "python", at: 1)
        let a2 = T.task(tenant: "a", name: "test", policy: "node", at: 2)
        let b1 = T.task(tenant: "b", name: "build", policy: "python", at: 3)
        let b2 = T.task(tenant: "b", name: "lint", policy: "c", at: 4)
        for task in [a1, a2, b1, b2] { try await store.create(task, limits: QueueLimits()) }
        let running = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        #expect(running.task.id == a1.id)

        func ids(_ query: TaskQuery) async throws -> [UUID] { try await store.list(query).tasks.map(\.id) }
        #expect(try await ids(TaskQuery()) == [b2.id, b1.id, a2.id, a1.id])
        #expect(try await ids(TaskQuery(tenant: "a")) == [a2.id, a1.id])
        #expect(try await ids(TaskQuery(status: .running)) == [a1.id])
        #expect(try await ids(TaskQuery(status: .queued)) == [b2.id, b1.id, a2.id])
        #expect(try await ids(TaskQuery(policy: "python")) == [b1.id, a1.id])
        #expect(try await ids(TaskQuery(name: "build")) == [b1.id, a1.id])
        #expect(try await ids(TaskQuery(tenant: "b", status: .queued, policy: "python", name: "build")) == [b1.id])
        #expect(try await ids(TaskQuery(tenant: "nobody")) == [])
        #expect(try await ids(TaskQuery(status: .succeeded)) == [])
        // Listed tasks are whole records.
        let listed = try await store.list(TaskQuery(status: .running)).tasks
        #expect(listed == [running.task])
        #expect(try await store.list(TaskQuery(tenant: "a")).nextCursor == nil)
    }

    func listPagination() async throws {
        // 23 tasks, several created in the same microsecond: ties are broken by id.
        var all: [TaskRecord] = []
        for index in 0..<23 {
            let task = T.task(tenant: index % 2 == 0 ? "even" : "odd", at: Int64(index / 3))
            all.append(task)
            try await store.create(task, limits: QueueLimits())
        }
        let newestFirst = all.sorted { ($0.createdAt, $0.id.uuidString) > ($1.createdAt, $1.id.uuidString) }

        func pages(_ query: TaskQuery) async throws -> (ids: [UUID], pages: Int) {
            var query = query
            var ids: [UUID] = []
            var count = 0
            while true {
                let page = try await store.list(query)
                count += 1
                #expect(page.tasks.count <= query.limit)
                ids += page.tasks.map(\.id)
                guard let next = page.nextCursor else { break }
                #expect(page.tasks.count == query.limit)
                query.cursor = next
                if count > 100 { Issue.record("pagination does not end"); break }
            }
            return (ids, count)
        }

        let byFive = try await pages(TaskQuery(limit: 5))
        #expect(byFive.ids == newestFirst.map(\.id))
        #expect(byFive.pages == 5)
        #expect(Set(byFive.ids).count == 23)

        // A last page that is exactly full has no next cursor.
        let even = newestFirst.filter { $0.tenant == "even" }
        #expect(even.count == 12)
        let byFour = try await pages(TaskQuery(tenant: "even", limit: 4))
        #expect(byFour.ids == even.map(\.id))
        #expect(byFour.pages == 3)

        let one = try await pages(TaskQuery(limit: 1))
        #expect(one.ids == newestFirst.map(\.id))

        // A cursor is a position, not an offset: tasks created meanwhile do not shift the pages.
        let first = try await store.list(TaskQuery(limit: 10))
        try await store.create(T.task(at: 500), limits: QueueLimits())
        let rest = try await store.list(TaskQuery(limit: 100, cursor: first.nextCursor))
        #expect(first.tasks.map(\.id) + rest.tasks.map(\.id) == newestFirst.map(\.id))
        #expect(rest.nextCursor == nil)
    }

    /// Times far outside any clock's range (from a forged cursor, a huge lease or retry delay) are
    /// clamped, never a trap; a forged cursor does not decode.
    func extremeTimes() async throws {
        let zero = "00000000-0000-0000-0000-000000000000"
        for micros in [Int64.max, Int64.min, StoreTime.maxMicros + 1, StoreTime.minMicros - 1] {
            let forged = Data("\(micros)|\(zero)".utf8).base64EncodedString()
            #expect(TaskCursor(encoded: forged) == nil)
            _ = try await store.list(TaskQuery(cursor: forged))
        }
        let edge = Data("\(StoreTime.maxMicros)|\(zero)".utf8).base64EncodedString()
        #expect(TaskCursor(encoded: edge) != nil)

        var far = T.task(name: "far", at: 0)
        far.createdAt = Date(timeIntervalSince1970: 1e300)
        far.notBefore = Date(timeIntervalSince1970: -1e300)
        try await store.create(far, limits: QueueLimits())
        let ordinary = T.task(name: "ordinary", at: 1)
        try await store.create(ordinary, limits: QueueLimits())
        // `far` is stored at the last microsecond; the zero id sorts before its own.
        #expect(try await store.list(TaskQuery(cursor: edge)).tasks.map(\.id) == [ordinary.id])
        let first = try await store.list(TaskQuery(limit: 1))
        #expect(first.tasks.map(\.id) == [far.id])
        let next = try #require(first.nextCursor)
        #expect(try await store.list(TaskQuery(cursor: next)).tasks.map(\.id) == [ordinary.id])

        let huge = Date(timeIntervalSince1970: 1e300)
        let claim = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(Int64.max), now: huge))
        #expect(claim.task.id == far.id)
        #expect(try await store.renewLease(taskID: far.id, attempt: 1, worker: "w", leaseDuration: .seconds(Int64.max), now: huge) == .held(cancelRequested: false))
        #expect(try await store.reclaimLeases(expiredBefore: T.at(0), ownedBy: "w", retryDelay: .seconds(Int64.max)) == [far.id])
        #expect(try await store.purgeFinished(before: Date(timeIntervalSince1970: -.infinity)) == 0)
    }

    // MARK: - Claims

    func claimOrder() async throws {
        let first = T.task(name: "first", at: 1)
        let later = T.task(name: "later", at: 2, notBefore: 100)
        let third = T.task(name: "third", at: 3)
        for task in [third, later, first] { try await store.create(task, limits: QueueLimits()) }

        let one = try #require(try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: T.at(10)))
        #expect(one.task.id == first.id)
        #expect(one.attempt == 1)
        #expect(one.task.status == .running)
        #expect(one.task.updatedAt == T.at(10))
        #expect(one.task.attempts == [AttemptRecord(number: 1, worker: "w1", startedAt: T.at(10))])
        #expect(try await store.task(id: first.id) == one.task)

        let two = try #require(try await store.claim(worker: "w2", leaseDuration: .seconds(30), now: T.at(10)))
        #expect(two.task.id == third.id)
        // `later` is not claimable before its notBefore.
        #expect(try await store.claim(worker: "w3", leaseDuration: .seconds(30), now: T.at(99)) == nil)
        let three = try #require(try await store.claim(worker: "w3", leaseDuration: .seconds(30), now: T.at(100)))
        #expect(three.task.id == later.id)
        #expect(try await store.claim(worker: "w3", leaseDuration: .seconds(30), now: T.at(1000)) == nil)
        #expect(try await store.activeCounts(tenant: nil) == (0, 3))
    }

    /// `createAndClaim` is `create` then an ordinary `claim`: the new task when nothing older
    /// waits, else the older one (the new one stays queued); none when the new task is not due yet
    /// or its tenant is at its running limit; and a create it refuses claims nothing.
    func createAndClaim() async throws {
        func createAndClaim(_ task: TaskRecord, limits: QueueLimits = QueueLimits(), now seconds: Int64, max: Int? = nil) async throws -> ClaimedTask? {
            try await store.createAndClaim(
                task, limits: limits, callback: nil, worker: "w", leaseDuration: .seconds(30), now: T.at(seconds), maxRunningPerTenant: max)
        }
        // Not due until long after this test's clock: created, queued, not claimed, and passed
        // over by every claim below.
        let delayed = T.task(name: "delayed", at: 0, notBefore: 1000)
        #expect(try await createAndClaim(delayed, now: 1) == nil)
        #expect(try await store.task(id: delayed.id)?.status == .queued)
        // Every kind of field a task keeps, and times finer than a store may keep: the claimed
        // record still equals the stored one (SQLite builds it from the insert, not a read).
        var first = T.task(name: "first", at: 1)
        first.createdAt = T.at(1).addingTimeInterval(0.000_000_4)
        first.updatedAt = first.createdAt
        first.notBefore = first.createdAt
        first.spec.command = ["/bin/true", "x"]
        first.spec.stdin = Array("in".utf8)
        first.spec.env = ["A": "1", "B": "two"]
        first.spec.outputs = ["out/**"]
        first.spec.files.append(TaskFile(path: "dir/data.bin", contents: [0, 1, 255], mode: 0o600))
        let claimed = try #require(try await createAndClaim(first, now: 2))
        #expect(claimed.task.id == first.id && claimed.attempt == 1 && claimed.task.status == .running)
        #expect(claimed.task.attempts == [AttemptRecord(number: 1, worker: "w", startedAt: T.at(2))])
        #expect(try await store.task(id: first.id) == claimed.task)
        #expect(try await store.renewLease(taskID: first.id, attempt: 1, worker: "w", leaseDuration: .seconds(30), now: T.at(3))
            == .held(cancelRequested: false))
        let history = try await store.events(taskID: first.id, after: 0, limit: 10).map(\.data)
        #expect(history == ["queued", "running"])
        let usage = try await store.tenantUsage(tenant: first.tenant)
        #expect(usage.queued == 1 && usage.stored == 2)  // the delayed task waits; the first runs

        // An older queued task goes first; the new one waits its turn.
        let older = T.task(name: "older", at: 3)
        try await store.create(older, limits: QueueLimits())
        let newer = T.task(name: "newer", at: 4)
        #expect(try await createAndClaim(newer, now: 5)?.task.id == older.id)
        #expect(try await store.task(id: newer.id)?.status == .queued)

        // The tenant is at its running limit (first and older run): created, not claimed.
        let limited = T.task(name: "limited", at: 6)
        #expect(try await createAndClaim(limited, now: 7, max: 2) == nil)
        #expect(try await store.task(id: limited.id)?.status == .queued)

        // A refused create claims nothing: the queued tasks stay queued.
        do {
            _ = try await createAndClaim(T.task(name: "refused", at: 8), limits: QueueLimits(maxQueued: 2), now: 9)
            Issue.record("expected queue_full")
        } catch let error as StoreError {
            #expect(error.code == .queueFull)
        }
        #expect(try await store.activeCounts(tenant: nil) == (3, 2))
    }

    /// A large task (a 1 MiB file, more than SQLite writes on the calling thread) is created and
    /// claimed as a small one is, both ways: by `createAndClaim` and by `create` then `claim`.
    func largeTasksAreCreatedAndClaimedAsSmallOnes() async throws {
        let contents = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for (index, direct) in [true, false].enumerated() {
            var task = T.task(name: "large", at: Int64(index))
            task.spec.files.append(TaskFile(path: "data.bin", contents: contents))
            let claimed: ClaimedTask
            if direct {
                claimed = try #require(try await store.createAndClaim(
                    task, limits: QueueLimits(), callback: nil, worker: "w", leaseDuration: .seconds(30), now: T.at(Int64(index) + 1),
                    maxRunningPerTenant: nil))
            } else {
                try await store.create(task, limits: QueueLimits())
                #expect(try await store.task(id: task.id)?.spec == task.spec)
                claimed = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(Int64(index) + 1)))
            }
            #expect(claimed.task.id == task.id && claimed.task.status == .running)
            #expect(claimed.task.spec.files.last?.contents == contents)
            #expect(try await store.task(id: task.id) == claimed.task)
        }
        #expect(try await store.activeCounts(tenant: nil) == (0, 2))
    }

    /// With nothing else waiting, `createAndClaim` still holds the tenant to its running limit.
    func createAndClaimHoldsTheRunningLimit() async throws {
        func createAndClaim(_ task: TaskRecord, now seconds: Int64) async throws -> ClaimedTask? {
            try await store.createAndClaim(
                task, limits: QueueLimits(), callback: nil, worker: "w", leaseDuration: .seconds(30), now: T.at(seconds),
                maxRunningPerTenant: 1)
        }
        let a1 = T.task(tenant: "acme", name: "a1", at: 1)
        #expect(try await createAndClaim(a1, now: 2)?.task.id == a1.id)
        let a2 = T.task(tenant: "acme", name: "a2", at: 3)
        #expect(try await createAndClaim(a2, now: 4) == nil)
        #expect(try await store.task(id: a2.id)?.status == .queued)
        // a2 waits for acme's turn; globex's task is claimed past it.
        let g1 = T.task(tenant: "globex", name: "g1", at: 5)
        #expect(try await createAndClaim(g1, now: 6)?.task.id == g1.id)
        #expect(try await store.activeCounts(tenant: "acme") == (1, 1))
    }

    /// A tenant at its running limit is passed over; its tasks wait, others' run.
    func claimRespectsTenantRunningLimit() async throws {
        let a1 = T.task(tenant: "acme", name: "a1", at: 1)
        let a2 = T.task(tenant: "acme", name: "a2", at: 2)
        let g1 = T.task(tenant: "globex", name: "g1", at: 3)
        for task in [a1, a2, g1] { try await store.create(task, limits: QueueLimits()) }

        let first = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10), maxRunningPerTenant: 1))
        #expect(first.task.id == a1.id)
        // acme has one running: a2 waits, globex's g1 goes first although it is newer.
        let second = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10), maxRunningPerTenant: 1))
        #expect(second.task.id == g1.id)
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10), maxRunningPerTenant: 1) == nil)
        // Without a limit (or once a1 ends) a2 is claimable.
        #expect(try await store.finishAttempt(
            taskID: a1.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(11)))
        let third = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(12), maxRunningPerTenant: 1))
        #expect(third.task.id == a2.id)
    }

    /// Claims take turns across tenants (least recently served first, FIFO within a tenant), so a
    /// tenant's backlog does not delay another tenant's tasks; the running limit still holds.
    func claimIsFairAcrossTenants() async throws {
        var byName: [UUID: String] = [:]
        for index in 0..<6 {
            let task = T.task(tenant: "big", name: "big\(index)", at: Int64(index))
            byName[task.id] = task.spec.name
            try await store.create(task, limits: QueueLimits())
        }
        for index in 0..<2 {
            let task = T.task(tenant: "small", name: "small\(index)", at: Int64(10 + index))
            byName[task.id] = task.spec.name
            try await store.create(task, limits: QueueLimits())
        }
        let late = T.task(tenant: "late", name: "late0", at: 20)
        byName[late.id] = late.spec.name
        try await store.create(late, limits: QueueLimits())

        var order: [String] = []
        while let claim = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(100)) {
            order.append(byName[claim.task.id] ?? "?")
            if order.count > 20 { break }
        }
        #expect(order == ["big0", "small0", "late0", "big1", "small1", "big2", "big3", "big4", "big5"])

        // With a running limit of 1, a tenant at its limit is passed over and turns continue.
        let limited: [TaskRecord] = [
            T.task(tenant: "x", name: "x0", at: 200), T.task(tenant: "x", name: "x1", at: 201), T.task(tenant: "y", name: "y0", at: 202),
        ]
        for task in limited { try await store.create(task, limits: QueueLimits()) }
        let first = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(300), maxRunningPerTenant: 1))
        let second = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(300), maxRunningPerTenant: 1))
        #expect([first.task.id, second.task.id] == [limited[0].id, limited[2].id])
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(300), maxRunningPerTenant: 1) == nil)
    }

    func concurrentClaimsNeverShareATask() async throws {
        let count = 200
        var created: Set<UUID> = []
        for index in 0..<count {
            let task = T.task(at: Int64(index))
            created.insert(task.id)
            try await store.create(task, limits: QueueLimits())
        }
        let store = self.store
        let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var mine: [UUID] = []
                    while let claim = try await store.claim(worker: "w\(worker)", leaseDuration: .seconds(60), now: T.at(1_000_000)) {
                        mine.append(claim.task.id)
                    }
                    return mine
                }
            }
            var all: [UUID] = []
            for try await ids in group { all += ids }
            return all
        }
        #expect(claimed.count == count)
        #expect(Set(claimed) == created)
        #expect(try await store.activeCounts(tenant: nil) == (0, count))
    }

    // MARK: - Leases

    func renewLease() async throws {
        let task = T.task(at: 0)
        try await store.create(task, limits: QueueLimits())
        let claim = try #require(try await store.claim(worker: "w1", leaseDuration: .seconds(10), now: T.at(1)))
        #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w1", leaseDuration: .seconds(10), now: T.at(5)) == .held(cancelRequested: false))
        // Someone else, another attempt, another task: not theirs.
        #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w2", leaseDuration: .seconds(10), now: T.at(5)) == .lost)
        #expect(try await store.renewLease(taskID: task.id, attempt: 2, worker: "w1", leaseDuration: .seconds(10), now: T.at(5)) == .lost)
        #expect(try await store.renewLease(taskID: UUID(), attempt: 1, worker: "w1", leaseDuration: .seconds(10), now: T.at(5)) == .lost)

        // The renewal moved the expiry: at 12 (past the first lease's 11) the lease is not expired.
        #expect(try await store.reclaimLeases(expiredBefore: T.at(12), ownedBy: nil, retryDelay: .zero) == [])

        let cancelled = try #require(try await store.requestCancel(id: task.id, now: T.at(13)))
        #expect(cancelled.status == .running && cancelled.cancelRequested)
        #expect(try await store.renewLease(taskID: task.id, attempt: claim.attempt, worker: "w1", leaseDuration: .seconds(10), now: T.at(14)) == .held(cancelRequested: true))

        // Lost after a reclaim.
        #expect(try await store.reclaimLeases(expiredBefore: T.at(100), ownedBy: nil, retryDelay: .zero) == [task.id])
        #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w1", leaseDuration: .seconds(10), now: T.at(101)) == .lost)

        // Lost after a delete.
        let other = T.task(at: 200)
        try await store.create(other, limits: QueueLimits())
        _ = try #require(try await store.claim(worker: "w1", leaseDuration: .seconds(10), now: T.at(201)))
        #expect(try await store.delete(id: other.id))
        #expect(try await store.renewLease(taskID: other.id, attempt: 1, worker: "w1", leaseDuration: .seconds(10), now: T.at(202)) == .lost)
    }

    func finishAttemptDispositions() async throws {
        let report = AttemptReport(outcome: .exited, exitCode: 0, wallMs: 5, stdout: Array("ok\n".utf8), policyName: "python")
        for (disposition, outcome) in [(AttemptDisposition.succeeded, Outcome.exited), (.failed, .memoryLimit), (.cancelled, .cancelled)] {
            let task = T.task(at: 0)
            try await store.create(task, limits: QueueLimits())
            let claim = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(1)))
            #expect(claim.task.id == task.id)
            // Only the holder of this attempt's lease may finish it.
            #expect(try await !store.finishAttempt(taskID: task.id, attempt: 1, worker: "other", outcome: outcome, report: report, disposition: disposition, now: T.at(2)))
            #expect(try await !store.finishAttempt(taskID: task.id, attempt: 2, worker: "w", outcome: outcome, report: report, disposition: disposition, now: T.at(2)))
            #expect(try await store.task(id: task.id) == claim.task)
            // A cancel asked for while it runs changes nothing that finishing does not set again.
            if disposition == .cancelled { _ = try await store.requestCancel(id: task.id, now: T.at(2)) }

            #expect(try await store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: outcome, report: report, disposition: disposition, now: T.at(3)))
            let done = try #require(try await store.task(id: task.id))
            // What the worker hands to waiters without reading it back: `TaskRecord.finish` on the claimed record.
            var expected = claim.task
            let applied = expected.finish(attempt: 1, outcome: outcome, report: report, disposition: disposition, now: T.at(3))
            #expect(applied)
            #expect(done == expected)
            #expect(done.status == disposition.status)
            #expect(done.finishedAt == T.at(3))
            #expect(done.updatedAt == T.at(3))
            #expect(done.cancelRequested == false)
            #expect(done.attempts == [AttemptRecord(number: 1, worker: "w", startedAt: T.at(1), finishedAt: T.at(3), outcome: outcome, report: report)])
            #expect(done.lastReport == report)
            // Once finished, the lease is gone: a second finish or a renewal is refused.
            #expect(try await !store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: outcome, report: report, disposition: disposition, now: T.at(4)))
            #expect(try await store.renewLease(taskID: task.id, attempt: 1, worker: "w", leaseDuration: .seconds(1), now: T.at(4)) == .lost)
            #expect(try await store.task(id: task.id) == done)
        }

        // Retry: queued again from notBefore, as attempt 2.
        let task = T.task(at: 10)
        try await store.create(task, limits: QueueLimits())
        let claimedForRetry = try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(11))
        let setup = AttemptReport(outcome: .setupError, setup: SetupFailure(stage: "filesystem", errno: "ENOENT", detail: "mount /usr"))
        #expect(try await store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .setupError, report: setup, disposition: .retry(notBefore: T.at(50)), now: T.at(12)))
        let retried = try #require(try await store.task(id: task.id))
        var expected = try #require(claimedForRetry).task
        let applied = expected.finish(attempt: 1, outcome: .setupError, report: setup, disposition: .retry(notBefore: T.at(50)), now: T.at(12))
        #expect(applied)
        #expect(retried == expected)
        #expect(retried.status == .queued)
        #expect(retried.notBefore == T.at(50))
        #expect(retried.finishedAt == nil)
        #expect(retried.attempts.map(\.outcome) == [.setupError])
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(49)) == nil)
        let again = try #require(try await store.claim(worker: "w2", leaseDuration: .seconds(30), now: T.at(50)))
        #expect(again.task.id == task.id)
        #expect(again.attempt == 2)
        #expect(again.task.attempts.count == 2)
        #expect(try await !store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(51)))
        #expect(try await store.finishAttempt(taskID: task.id, attempt: 2, worker: "w2", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(52)))
        let finished = try #require(try await store.task(id: task.id))
        #expect(finished.status == .succeeded)
        #expect(finished.attempts.map(\.outcome) == [.setupError, .exited])
        #expect(finished.attempts[1].report == nil)
        #expect(finished.lastReport == setup)
    }

    func reclaimLeases() async throws {
        // Expired leases: queued again after retryDelay, the attempt `lost`.
        let expiring = T.task(name: "expiring", at: 0)
        try await store.create(expiring, limits: QueueLimits())
        _ = try #require(try await store.claim(worker: "w1", leaseDuration: .seconds(10), now: T.at(1)))
        #expect(try await store.reclaimLeases(expiredBefore: T.at(5), ownedBy: nil, retryDelay: .seconds(3)) == [])
        #expect(try await store.reclaimLeases(expiredBefore: T.at(12), ownedBy: nil, retryDelay: .seconds(3)) == [expiring.id])
        var task = try #require(try await store.task(id: expiring.id))
        #expect(task.status == .queued)
        #expect(task.notBefore == T.at(15))
        #expect(task.updatedAt == T.at(12))
        #expect(task.finishedAt == nil)
        #expect(task.attempts == [AttemptRecord(number: 1, worker: "w1", startedAt: T.at(1), finishedAt: T.at(12), outcome: .lost)])
        #expect(try await store.reclaimLeases(expiredBefore: T.at(1000), ownedBy: nil, retryDelay: .zero) == [])
        #expect(try await store.claim(worker: "w2", leaseDuration: .seconds(10), now: T.at(14)) == nil)
        let second = try #require(try await store.claim(worker: "w2", leaseDuration: .seconds(100), now: T.at(15)))
        #expect(second.attempt == 2)

        // By owner, for a restarted worker: its unexpired leases go, others' stay.
        let mine = T.task(name: "mine", at: 20)
        try await store.create(mine, limits: QueueLimits())
        _ = try #require(try await store.claim(worker: "w3", leaseDuration: .seconds(100), now: T.at(21)))
        #expect(try await store.reclaimLeases(expiredBefore: T.at(22), ownedBy: "w3", retryDelay: .zero) == [mine.id])
        task = try #require(try await store.task(id: mine.id))
        #expect(task.status == .queued && task.notBefore == T.at(22))
        #expect(try await store.task(id: expiring.id)?.status == .running)

        // Attempts used up: failed. Cancel requested: cancelled.
        let once = T.task(name: "once", at: 30, maxAttempts: 1)
        try await store.create(once, limits: QueueLimits())
        let cancelMe = T.task(name: "cancel-me", at: 31)
        try await store.create(cancelMe, limits: QueueLimits())
        // (`mine` is queued from 22 and older than both: claim it out of the way first.)
        #expect(try await store.claim(worker: "w4", leaseDuration: .seconds(1000), now: T.at(40))?.task.id == mine.id)
        #expect(try await store.claim(worker: "w4", leaseDuration: .seconds(5), now: T.at(40))?.task.id == once.id)
        #expect(try await store.claim(worker: "w5", leaseDuration: .seconds(5), now: T.at(40))?.task.id == cancelMe.id)
        _ = try await store.requestCancel(id: cancelMe.id, now: T.at(41))
        let reclaimed = try await store.reclaimLeases(expiredBefore: T.at(50), ownedBy: nil, retryDelay: .seconds(1))
        #expect(Set(reclaimed) == [once.id, cancelMe.id])
        task = try #require(try await store.task(id: once.id))
        #expect(task.status == .failed && task.finishedAt == T.at(50))
        #expect(task.attempts.map(\.outcome) == [.lost])
        task = try #require(try await store.task(id: cancelMe.id))
        #expect(task.status == .cancelled && task.finishedAt == T.at(50))
        #expect(task.attempts.map(\.outcome) == [.lost])
        // The reclaimed workers' late reports are refused.
        #expect(try await !store.finishAttempt(taskID: once.id, attempt: 1, worker: "w4", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(51)))
        #expect(try await store.task(id: once.id)?.status == .failed)
        #expect(try await store.activeCounts(tenant: nil) == (0, 2))
    }

    // MARK: - Cancel and delete

    func requestCancel() async throws {
        let queued = T.task(at: 0)
        let running = T.task(at: 1)
        try await store.create(queued, limits: QueueLimits())
        try await store.create(running, limits: QueueLimits())
        let cancelledQueued = try #require(try await store.requestCancel(id: queued.id, now: T.at(2)))
        #expect(cancelledQueued.status == .cancelled)
        #expect(cancelledQueued.finishedAt == T.at(2))
        #expect(cancelledQueued.updatedAt == T.at(2))
        #expect(try await store.task(id: queued.id) == cancelledQueued)
        // A cancelled task is never claimed.
        let claim = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(3)))
        #expect(claim.task.id == running.id)
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(3)) == nil)

        let flagged = try #require(try await store.requestCancel(id: running.id, now: T.at(4)))
        #expect(flagged.status == .running)
        #expect(flagged.cancelRequested)
        #expect(flagged.updatedAt == T.at(4))
        #expect(flagged.finishedAt == nil)
        #expect(try await store.finishAttempt(taskID: running.id, attempt: 1, worker: "w", outcome: .cancelled, report: nil, disposition: .cancelled, now: T.at(5)))
        let finished = try #require(try await store.task(id: running.id))
        #expect(finished.status == .cancelled && !finished.cancelRequested)

        // Finished: unchanged.
        #expect(try await store.requestCancel(id: running.id, now: T.at(6)) == finished)
        #expect(try await store.requestCancel(id: queued.id, now: T.at(6)) == cancelledQueued)
        #expect(try await store.requestCancel(id: UUID(), now: T.at(6)) == nil)

        let statuses = try await store.events(taskID: queued.id, after: 0, limit: 100).map(\.data)
        #expect(statuses == ["queued", "cancelled"])
    }

    func delete() async throws {
        let task = T.task(at: 0)
        let kept = T.task(at: 1)
        try await store.create(task, limits: QueueLimits())
        try await store.create(kept, limits: QueueLimits())
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(2)))
        try await store.appendOutput(taskID: task.id, attempt: 1, kind: .stdout, data: "x", now: T.at(3))
        #expect(try await store.delete(id: task.id))
        #expect(try await store.task(id: task.id) == nil)
        #expect(try await store.events(taskID: task.id, after: 0, limit: 100) == [])
        #expect(try await !store.delete(id: task.id))
        #expect(try await !store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(4)))
        #expect(try await store.reclaimLeases(expiredBefore: T.at(1000), ownedBy: "w", retryDelay: .zero) == [])
        #expect(try await store.list(TaskQuery()).tasks.map(\.id) == [kept.id])
        #expect(try await store.activeCounts(tenant: nil) == (1, 0))
    }

    // MARK: - Events

    func events() async throws {
        let task = T.task(at: 0)
        let other = T.task(at: 0, notBefore: 1000)
        try await store.create(task, limits: QueueLimits())
        try await store.create(other, limits: QueueLimits())
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(1)))
        try await store.appendOutput(taskID: task.id, attempt: 1, kind: .stdout, data: "hello ", now: T.at(2))
        try await store.appendOutput(taskID: other.id, attempt: 1, kind: .stdout, data: "not mine", now: T.at(2))
        try await store.appendOutput(taskID: task.id, attempt: 1, kind: .stderr, data: "oops\n", now: T.at(3))
        try await store.appendOutput(taskID: task.id, attempt: 1, kind: .stdout, data: "world\n", now: T.at(4))
        #expect(try await store.finishAttempt(taskID: task.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .retry(notBefore: T.at(5)), now: T.at(5)))
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(6)))
        #expect(try await store.finishAttempt(taskID: task.id, attempt: 2, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(7)))
        // Output of a task that does not exist is dropped, not an error.
        try await store.appendOutput(taskID: UUID(), attempt: 1, kind: .stdout, data: "lost", now: T.at(8))

        let all = try await store.events(taskID: task.id, after: 0, limit: 100)
        struct Seen: Equatable { var kind: TaskEvent.Kind; var attempt: Int?; var data: String; var at: Date }
        #expect(all.map { Seen(kind: $0.kind, attempt: $0.attempt, data: $0.data, at: $0.at) } == [
            Seen(kind: .status, attempt: nil, data: "queued", at: T.at(0)),
            Seen(kind: .status, attempt: 1, data: "running", at: T.at(1)),
            Seen(kind: .stdout, attempt: 1, data: "hello ", at: T.at(2)),
            Seen(kind: .stderr, attempt: 1, data: "oops\n", at: T.at(3)),
            Seen(kind: .stdout, attempt: 1, data: "world\n", at: T.at(4)),
            Seen(kind: .status, attempt: 1, data: "queued", at: T.at(5)),
            Seen(kind: .status, attempt: 2, data: "running", at: T.at(6)),
            Seen(kind: .status, attempt: 2, data: "succeeded", at: T.at(7)),
        ])
        #expect(all.allSatisfy { $0.taskID == task.id })
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.sequence < $1.sequence })

        // `after` and `limit` page through them.
        #expect(try await store.events(taskID: task.id, after: all[2].sequence, limit: 100) == Array(all[3...]))
        #expect(try await store.events(taskID: task.id, after: all[2].sequence, limit: 2) == Array(all[3...4]))
        #expect(try await store.events(taskID: task.id, after: all[7].sequence, limit: 100) == [])
        #expect(try await store.events(taskID: task.id, after: 0, limit: 0) == [])
        #expect(try await store.events(taskID: other.id, after: 0, limit: 100).map(\.data) == ["queued", "not mine"])
        #expect(try await store.events(taskID: UUID(), after: 0, limit: 100) == [])

        // NUL in output text becomes U+FFFD in every store (the exact bytes are in the report).
        try await store.appendOutput(taskID: other.id, attempt: 1, kind: .stdout, data: "a\u{0}b", now: T.at(9))
        #expect(try await store.events(taskID: other.id, after: 0, limit: 100).last?.data == "a\u{FFFD}b")
    }

    // MARK: - Retention and counts

    func purgeFinished() async throws {
        let old = T.task(name: "old", at: 0)
        let recent = T.task(name: "recent", at: 1)
        let queued = T.task(name: "queued", at: 2)
        let running = T.task(name: "running", at: 3)
        let cancelled = T.task(name: "cancelled", at: 4)
        for task in [old, recent, queued, running, cancelled] { try await store.create(task, limits: QueueLimits()) }
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(900), now: T.at(10))?.task.id == old.id)
        #expect(try await store.finishAttempt(taskID: old.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(11)))
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(900), now: T.at(12))?.task.id == recent.id)
        #expect(try await store.finishAttempt(taskID: recent.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .failed, now: T.at(100)))
        _ = try await store.requestCancel(id: cancelled.id, now: T.at(20))
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(900), now: T.at(30))?.task.id == queued.id)
        // `running` stays queued; `queued` is now running.

        #expect(try await store.purgeFinished(before: T.at(11)) == 0)
        #expect(try await store.purgeFinished(before: T.at(50)) == 2)
        #expect(try await store.task(id: old.id) == nil)
        #expect(try await store.task(id: cancelled.id) == nil)
        #expect(try await store.events(taskID: old.id, after: 0, limit: 10) == [])
        #expect(try await store.task(id: recent.id)?.status == .failed)
        #expect(try await store.purgeFinished(before: T.at(1_000_000)) == 1)
        #expect(Set(try await store.list(TaskQuery()).tasks.map(\.id)) == [queued.id, running.id])
    }

    func activeCounts() async throws {
        #expect(try await store.activeCounts(tenant: nil) == (0, 0))
        for (index, tenant) in ["a", "a", "a", "b", "b", "c"].enumerated() {
            try await store.create(T.task(tenant: tenant, at: Int64(index)), limits: QueueLimits())
        }
        // Claims a's oldest, then (taking turns) b's oldest, then finishes a's.
        let first = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        #expect(try await store.finishAttempt(taskID: first.task.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(11)))
        #expect(try await store.activeCounts(tenant: nil) == (4, 1))
        #expect(try await store.activeCounts(tenant: "a") == (2, 0))
        #expect(try await store.activeCounts(tenant: "b") == (1, 1))
        #expect(try await store.activeCounts(tenant: "z") == (0, 0))
    }

    private func expectQueueFull(_ body: () async throws -> Void) async throws {
        do {
            try await body()
            Issue.record("expected queue_full")
        } catch let error as StoreError {
            #expect(error.code == .queueFull)
        }
    }
}

/// Test values.
enum T {
    /// A whole-microsecond time, `seconds` after a fixed origin.
    static func at(_ seconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(1_800_000_000_000_000 + seconds * 1_000_000) / 1e6)
    }

    static func task(
        tenant: String = "acme", name: String = "task", policy: String = "python", at seconds: Int64,
        notBefore: Int64? = nil, maxAttempts: Int = 3
    ) -> TaskRecord {
        TaskRecord(
            tenant: tenant,
            spec: TaskSpec(name: name, policy: policy, files: [TaskFile(path: "main.py", contents: Array("print(1)\n".utf8))], maxAttempts: maxAttempts),
            createdAt: at(seconds), notBefore: notBefore.map(at))
    }
}
