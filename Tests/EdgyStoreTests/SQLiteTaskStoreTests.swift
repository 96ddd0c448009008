import EdgyAuth
import EdgyModel
import EdgyStore
@testable import EdgyStoreSQLite
import Foundation
import GRDB
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What only a file-backed store has to show: its schema opens again, and its data outlives
/// the instance that wrote it.
@Suite("SQLiteTaskStore")
struct SQLiteTaskStoreTests {
    /// Writes a little of everything: a finished task, a running one (leased), a queued one,
    /// output, a token.
    private func populate(_ store: SQLiteTaskStore) async throws -> (finished: TaskRecord, running: TaskRecord, queued: TaskRecord, token: Principal) {
        let done = T.task(name: "done", at: 0)
        let running = T.task(name: "running", at: 1)
        let queued = T.task(name: "queued", at: 2)
        for task in [done, running, queued] { try await store.create(task, limits: QueueLimits()) }
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(3)))
        try await store.appendOutput(taskID: done.id, attempt: 1, kind: .stdout, data: "hi\n", now: T.at(4))
        #expect(try await store.finishAttempt(taskID: done.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded, now: T.at(5)))
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(6)))
        let token = Principal(name: "admin", role: .admin, tenant: "ops", createdAt: T.at(0))
        try await store.insertToken(token, tokenHash: "abc")
        return (
            try #require(try await store.task(id: done.id)), try #require(try await store.task(id: running.id)),
            try #require(try await store.task(id: queued.id)), token
        )
    }

    private func expectContents(
        _ store: SQLiteTaskStore, _ written: (finished: TaskRecord, running: TaskRecord, queued: TaskRecord, token: Principal)
    ) async throws {
        #expect(try await store.task(id: written.finished.id) == written.finished)
        #expect(try await store.task(id: written.running.id) == written.running)
        #expect(try await store.task(id: written.queued.id) == written.queued)
        #expect(try await store.events(taskID: written.finished.id, after: 0, limit: 10).map(\.data) == ["queued", "running", "hi\n", "succeeded"])
        #expect(try await store.principal(forTokenHash: "abc") == written.token)
        // The lease survived too: its holder may still renew it, and the janitor sees it expire.
        #expect(try await store.renewLease(taskID: written.running.id, attempt: 1, worker: "w", leaseDuration: .seconds(30), now: T.at(7)) == .held(cancelRequested: false))
        #expect(try await store.reclaimLeases(expiredBefore: T.at(100), ownedBy: nil, retryDelay: .zero) == [written.running.id])
    }

    private final class Found: Sendable {
        let principal = Mutex<Principal?>(nil)
    }

    /// The reads edgyd makes on its event loop (the token lookup, a worker's claim check) block that
    /// thread until they are done. An async read keeps its pooled reader until its task resumes on
    /// an executor thread, which may be that same loop: had the loop waited for a pooled reader,
    /// with every reader held so, it would have waited forever. With every pooled reader held, a
    /// calling-thread read must still answer.
    @Test func callingThreadReadsDoNotWaitForThePoolsReaders() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        let token = Principal(name: "admin", role: .admin, tenant: "ops", createdAt: T.at(0))
        try await store.insertToken(token, tokenHash: "abc")

        let readers = store.pool.configuration.maximumReaderCount
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holders = (0..<readers).map { _ in
            Task.detached {
                try await store.pool.read { _ in
                    holding.signal()
                    release.wait()
                }
            }
        }
        defer { for _ in 0..<readers { release.signal() } }
        for _ in 0..<readers {
            #expect(holding.wait(timeout: .now() + 10) == .success, "every pooled reader is held")
        }

        let answered = DispatchSemaphore(value: 0)
        let found = Found()
        let reader = Thread {
            let principal = try? store.readOnCallingThread { db in
                try Row.fetchOne(db, sql: "SELECT \(SQLiteTaskStore.tokenColumns) FROM tokens WHERE hash = 'abc'")
                    .map(SQLiteTaskStore.decodePrincipal)
            }
            found.principal.withLock { $0 = principal }
            answered.signal()
        }
        reader.start()
        #expect(answered.wait(timeout: .now() + 5) == .success, "a calling-thread read answered while every pooled reader was held")
        #expect(found.principal.withLock { $0 } == token)

        for _ in 0..<readers { release.signal() }
        for holder in holders { try await holder.value }
        // Both paths serve: the claim's check and the token lookup.
        #expect(try await store.principal(forTokenHash: "abc") == token)
        #expect(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(1)) == nil)
    }

    @Test func jsonColumnsKeepSlashesAsTheyAreAndRowsWithEscapedOnesStillRead() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        var task = T.task(at: 0)
        task.spec.command = ["/bin/sh", "-c", "echo a/b > out/x"]
        task.spec.env = ["PATH": "/usr/bin:/bin", "HOME": "/work"]
        task.spec.outputs = ["out/**"]
        try await store.create(task, limits: QueueLimits())
        let id = task.id.uuidString
        let columns = try await store.pool.read { db -> [String?] in
            let row = try Row.fetchOne(db, sql: "SELECT command, env, outputs FROM tasks WHERE id = ?", arguments: [id])
            return [row?["command"], row?["env"], row?["outputs"]]
        }
        #expect(columns == [#"["/bin/sh","-c","echo a/b > out/x"]"#, #"{"HOME":"/work","PATH":"/usr/bin:/bin"}"#, #"["out/**"]"#])
        #expect(try await store.task(id: task.id)?.spec == task.spec)
        // Earlier versions wrote `\/` for each slash: those rows read back the same.
        try await store.pool.write { db in
            try db.execute(sql: #"UPDATE tasks SET command = '["\/bin\/sh","-c","echo a\/b > out\/x"]', env = '{"HOME":"\/work","PATH":"\/usr\/bin:\/bin"}' WHERE id = ?"#, arguments: [id])
        }
        #expect(try await store.task(id: task.id)?.spec == task.spec)
    }

    @Test func reopeningTheSameFileKeepsEverything() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        var first: SQLiteTaskStore? = try SQLiteTaskStore(path: path)
        let written = try await populate(try #require(first))
        first = nil
        // Migrations already applied are skipped, every time.
        _ = try SQLiteTaskStore(path: path)
        let reopened = try SQLiteTaskStore(path: path)
        try await expectContents(reopened, written)
    }

    @Test func closingCheckpointsAndLaterCallsThrow() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let store = try SQLiteTaskStore(path: path)
        let written = try await populate(store)
        try store.close()
        await #expect(throws: (any Error).self) { _ = try await store.task(id: written.queued.id) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(size == 0, "the WAL was checkpointed into the database file")
        try await expectContents(try SQLiteTaskStore(path: path), written)
    }

    /// The purge deletes in batches, a transaction each: every finished task past the date goes,
    /// however many batches it takes, and nothing else.
    @Test func purgeDeletesInBatchesAndLeavesTheRest() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        var finished: [UUID] = []
        for index in 0..<7 {
            let task = T.task(name: "t\(index)", at: Int64(index))
            try await store.create(task, limits: QueueLimits())
            let claimed = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
            #expect(try await store.finishAttempt(
                taskID: claimed.task.id, attempt: 1, worker: "w", outcome: .exited, report: nil, disposition: .succeeded,
                now: T.at(index < 5 ? 20 : 200)))
            finished.append(claimed.task.id)
        }
        let queued = T.task(name: "queued", at: 50)
        try await store.create(queued, limits: QueueLimits())
        #expect(try await store.purgeFinished(before: T.at(100), batch: 2) == 5)
        #expect(Set(try await store.list(TaskQuery()).tasks.map(\.id)) == Set(finished.suffix(2) + [queued.id]))
        #expect(try await store.purgeFinished(before: T.at(100), batch: 2) == 0)
        #expect(try await store.purgeFinished(before: T.at(1000), batch: 2) == 2)
    }

    @Test func statementJournalsStayInMemoryOnEveryConnection() async throws {
        // A savepoint's journal past 64 KiB would otherwise spill to a file in /var/tmp.
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        let memory = 2
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA temp_store") } == memory)
        #expect(try await store.pool.read { try Int.fetchOne($0, sql: "PRAGMA temp_store") } == memory)
    }

    @Test func backgroundCheckpointsKeepTheWALSmall() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let store = try SQLiteTaskStore(path: path)
        let checkpointer = Task { try await store.checkpointContinuously(every: .milliseconds(10)) }
        defer { checkpointer.cancel() }
        func walBytes() -> Int { (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0 }
        func autocheckpointPages() async throws -> Int? { try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") } }

        // Eight batches of ten tasks with a 20 kB file each: about 6 MB of WAL frames in all.
        var high = 0
        for batch in 0..<8 {
            for i in 0..<10 {
                var task = T.task(name: "b\(batch)-\(i)", at: Int64(batch * 10 + i))
                task.spec.files = [TaskFile(path: "data.bin", contents: Array(repeating: UInt8(i), count: 20_000))]
                try await store.create(task, limits: QueueLimits())
            }
            high = max(high, walBytes())
            // Two more checkpoints: the second began after the batch's last commit, so it copied all of it.
            let seen = store.backgroundCheckpoints
            let deadline = ContinuousClock.now + .seconds(10)
            while store.backgroundCheckpoints < seen + 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(store.backgroundCheckpoints >= seen + 2, "no checkpoint within 10 s")
        }
        #expect(try await autocheckpointPages() == SQLiteTaskStore.backstopCheckpointPages, "the writer's own checkpoints wait for the backstop")
        // Each batch's first commit started the WAL over: it held about one batch, never all eight.
        #expect(high > 0 && high < 2_500_000, "WAL reached \(high) bytes")
        #expect(try await store.list(TaskQuery(tenant: "acme", limit: 100)).tasks.count == 80)

        checkpointer.cancel()
        try await checkpointer.value
        #expect(try await autocheckpointPages() == SQLiteTaskStore.defaultCheckpointPages, "stopping restores SQLite's default")

        // One that cannot start says so at once, rather than looping without effect.
        try store.close()
        await #expect(throws: (any Error).self) { try await store.checkpointContinuously(every: .milliseconds(10)) }
    }

    @Test func secondInstanceSeesTheFirstsWritesWhileItIsOpen() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let first = try SQLiteTaskStore(path: path)
        let written = try await populate(first)
        // `first` is never closed: the second instance reads the WAL the first one wrote.
        let second = try SQLiteTaskStore(path: path)
        try await expectContents(second, written)
        // And both instances share one queue: a task is claimed once, whichever asks.
        let task = T.task(at: 50)
        try await first.create(task, limits: QueueLimits())
        // (`written.queued` is still queued; the reclaimed task is queued again only from 100.)
        var claimed: [UUID] = []
        for store in [second, first, second, first] {
            if let claim = try await store.claim(worker: "x", leaseDuration: .seconds(30), now: T.at(60)) { claimed.append(claim.task.id) }
        }
        #expect(claimed == [written.queued.id, task.id])
        withExtendedLifetime(first) {}
    }

    /// Two instances on one file stand for two daemons on one host: their claims race through
    /// SQLite's write lock, and still no task is claimed twice.
    @Test func claimsFromTwoInstancesNeverShareATask() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let stores = [try SQLiteTaskStore(path: path), try SQLiteTaskStore(path: path)]
        var created: Set<UUID> = []
        for index in 0..<200 {
            let task = T.task(at: Int64(index))
            created.insert(task.id)
            try await stores[index % 2].create(task, limits: QueueLimits())
        }
        let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for worker in 0..<8 {
                let store = stores[worker % 2]
                group.addTask {
                    var mine: [UUID] = []
                    while let claim = try await store.claim(worker: "w\(worker)", leaseDuration: .seconds(60), now: T.at(1_000)) {
                        mine.append(claim.task.id)
                    }
                    return mine
                }
            }
            var all: [UUID] = []
            for try await ids in group { all += ids }
            return all
        }
        #expect(claimed.count == 200)
        #expect(Set(claimed) == created)
    }

    /// A killed process leaves the database file and its WAL as they were at the last commit,
    /// never checkpointed or closed. Copying both while the writer is still open is that state.
    @Test func dataSurvivesAKilledProcess() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let store = try SQLiteTaskStore(path: path)
        let written = try await populate(store)

        let crashed = TemporaryDirectory()
        defer { crashed.remove() }
        let files = FileManager.default
        for suffix in ["", "-wal"] where files.fileExists(atPath: path + suffix) {
            try files.copyItem(atPath: path + suffix, toPath: crashed.path + "/edgy.sqlite" + suffix)
        }
        #expect(files.fileExists(atPath: crashed.path + "/edgy.sqlite-wal"), "the test means nothing if everything was checkpointed")
        let recovered = try SQLiteTaskStore(path: crashed.path + "/edgy.sqlite")
        try await expectContents(recovered, written)
        withExtendedLifetime(store) {}
    }

    /// The real thing, as an exit test: a child process writes and is killed with SIGKILL; what
    /// it committed is there.
    @Test func dataSurvivesSIGKILL() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        await #expect(processExitsWith: .signal(SIGKILL)) { [path = path as String] in
            let store = try SQLiteTaskStore(path: path)
            for index in 0..<50 { try await store.create(T.task(at: Int64(index)), limits: QueueLimits()) }
            for _ in 0..<10 { _ = try await store.claim(worker: "killed", leaseDuration: .seconds(60), now: T.at(100)) }
            try await store.insertToken(Principal(name: "n", role: .reader, tenant: "t", createdAt: T.at(0)), tokenHash: "killed")
            kill(getpid(), SIGKILL)
        }

        let store = try SQLiteTaskStore(path: path)
        #expect(try await store.activeCounts(tenant: nil) == (40, 10))
        let page = try await store.list(TaskQuery(limit: 100))
        #expect(page.tasks.count == 50)
        #expect(page.tasks.allSatisfy { $0.spec.files.first?.contents == Array("print(1)\n".utf8) })
        #expect(try await store.principal(forTokenHash: "killed") != nil)
        // The killed worker's leases are still there, for the janitor to reclaim.
        #expect(try await store.reclaimLeases(expiredBefore: T.at(1_000_000), ownedBy: "killed", retryDelay: .zero).count == 10)
    }

    @Test func aPathWhereNoDatabaseCanBeThrows() {
        #expect(throws: (any Error).self) { try SQLiteTaskStore(path: "/proc/nonexistent/edgy.sqlite") }
    }

    /// The daemon's hot path, create → claim → finish, on a temporary file. Prints the rate; fails
    /// only if it is absurdly slow.
    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    @Test func hotPathThroughput() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        let report = AttemptReport(outcome: .exited, exitCode: 0, wallMs: 3, stdout: Array("hello\n".utf8), policyName: "python")

        func cycle(_ index: Int, worker: String) async throws {
            let now = T.at(1_000_000)
            try await store.create(T.task(tenant: "t\(index % 4)", at: 0), limits: QueueLimits(maxQueued: 10_000, maxQueuedPerTenant: 10_000))
            let claim = try #require(try await store.claim(worker: worker, leaseDuration: .seconds(30), now: now))
            #expect(try await store.finishAttempt(
                taskID: claim.task.id, attempt: claim.attempt, worker: worker, outcome: .exited, report: report,
                disposition: .succeeded, now: now))
        }

        for index in 0..<100 { try await cycle(index, worker: "warm-up") }
        let count = 1000
        let clock = ContinuousClock()
        let cpuBefore = Self.processCPUSeconds()
        let sequential = try await clock.measure {
            for index in 0..<count { try await cycle(index, worker: "w") }
        }
        // CPU seconds the process spent per cycle, all threads: the rate an otherwise idle core
        // would sustain, whatever else the host is doing while the test runs.
        let cpuPerCycle = (Self.processCPUSeconds() - cpuBefore) / Double(count)
        let parallel = try await clock.measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask { for index in 0..<(count / 4) { try await cycle(index, worker: "w\(worker)") } }
                }
                try await group.waitForAll()
            }
        }
        // Each step alone.
        var claims: [ClaimedTask] = []
        let creates = try await clock.measure {
            for index in 0..<count { try await store.create(T.task(at: Int64(index)), limits: QueueLimits(maxQueued: 10_000)) }
        }
        let claiming = try await clock.measure {
            for _ in 0..<count { claims.append(try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(1_000_000)))) }
        }
        let finishing = try await clock.measure {
            for claim in claims {
                _ = try await store.finishAttempt(
                    taskID: claim.task.id, attempt: claim.attempt, worker: "w", outcome: .exited, report: report, disposition: .succeeded, now: T.at(1_000_001))
            }
        }
        let reading = try await clock.measure {
            for claim in claims { _ = try await store.task(id: claim.task.id) }
        }
        let rate = { (elapsed: Duration) in Double(count) / elapsed.seconds }
        print("SQLiteTaskStore steps: create \(Int(rate(creates)))/s, claim \(Int(rate(claiming)))/s, finish \(Int(rate(finishing)))/s, task(id:) \(Int(rate(reading)))/s")
        print("SQLiteTaskStore hot path: create+claim+finish \(Int(rate(sequential)))/s sequential, \(Int(rate(parallel)))/s with 4 concurrent workers, \(Int(cpuPerCycle * 1e6)) µs CPU per cycle")
        #expect(rate(sequential) > 100)
        #expect(try await store.activeCounts(tenant: nil) == (0, 0))
    }

    /// The tenants' task counters (`tenant_usage`, kept by triggers) against a count of the tasks
    /// themselves, after creates, claims, output, finishes, a retry, a lost lease, deletes and
    /// retention; and the same counters rebuilt by the migration from a database without them.
    @Test func tenantCountersMatchTheTasksThroughEveryChange() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let store = try SQLiteTaskStore(path: path)
        func scanned(_ tenant: String, in store: SQLiteTaskStore) async throws -> TenantUsage {
            try await store.pool.read { db in
                let row = try #require(try Row.fetchOne(db, sql: """
                    SELECT COALESCE(SUM(status = 'queued'), 0), COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM tasks WHERE tenant = ?
                    """, arguments: [tenant]))
                return TenantUsage(queued: row[0], stored: row[1], bytes: row[2])
            }
        }
        func expectCounted(_ step: String) async throws {
            for tenant in ["a", "b", "c"] {
                let counted = try await store.tenantUsage(tenant: tenant)
                #expect(counted == (try await scanned(tenant, in: store)), "\(step): tenant \(tenant)")
            }
        }
        var tasks: [TaskRecord] = []
        for (index, tenant) in ["a", "a", "b", "a", "b", "c"].enumerated() {
            var task = T.task(tenant: tenant, at: Int64(index))
            task.spec.stdin = Array(repeating: 1, count: index * 10)
            tasks.append(task)
            try await store.create(task, limits: QueueLimits(maxStoredPerTenant: 100))
        }
        try await expectCounted("created")
        #expect(try await store.tenantUsage(tenant: "a").queued == 3)
        let first = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        let second = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(30), now: T.at(10)))
        try await expectCounted("claimed")
        try await store.appendOutput(taskID: first.task.id, attempt: 1, kind: .stdout, data: "output", now: T.at(11))
        try await expectCounted("output")
        let report = AttemptReport(outcome: .exited, exitCode: 0, stdout: Array("out".utf8))
        #expect(try await store.finishAttempt(taskID: first.task.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: .succeeded, now: T.at(12)))
        #expect(try await store.finishAttempt(taskID: second.task.id, attempt: 1, worker: "w", outcome: .exited, report: report, disposition: .retry(notBefore: T.at(13)), now: T.at(12)))
        try await expectCounted("finished and retried")
        _ = try #require(try await store.claim(worker: "w", leaseDuration: .seconds(1), now: T.at(20)))
        #expect(try await store.reclaimLeases(expiredBefore: T.at(30), ownedBy: nil, retryDelay: .zero).count == 1)
        try await expectCounted("lease lost")
        #expect(try await store.delete(id: tasks[5].id))
        #expect(try await store.purgeFinished(before: T.at(100)) == 1)
        try await expectCounted("deleted and purged")
        #expect(try await store.tenantUsage(tenant: "c") == TenantUsage(queued: 0, stored: 0, bytes: 0))

        // A database from before the counters: the migration counts what is there.
        try await store.pool.write { db in
            try db.execute(sql: """
                DROP TRIGGER tenant_usage_on_insert; DROP TRIGGER tenant_usage_on_delete; DROP TRIGGER tenant_usage_on_update;
                DROP TABLE tenant_usage; DELETE FROM grdb_migrations WHERE identifier LIKE 'v9:%';
                """)
        }
        try store.close()
        let reopened = try SQLiteTaskStore(path: path)
        for tenant in ["a", "b", "c"] {
            #expect(try await reopened.tenantUsage(tenant: tenant) == (try await scanned(tenant, in: reopened)))
        }
        #expect(try await reopened.tenantUsage(tenant: "a").stored == 2)  // its succeeded task was purged
    }

    /// Small blobs' bytes are stored once however often they are stored; a blob whose bytes row
    /// went missing is refused as corrupted, and storing the same bytes again brings them back.
    @Test func smallBlobBytesAreStoredOnceAndRestored() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        let bytes = Array("small blob bytes".utf8)
        let sha256 = BlobDigest.sha256Hex(bytes)
        let byteRows = { try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blobdata.blob_bytes") } }
        _ = try await store.putUpload(sha256: sha256, bytes: bytes, tenant: "a", maxBytes: nil, now: Date())
        _ = try await store.putUpload(sha256: sha256, bytes: bytes, tenant: "b", maxBytes: nil, now: Date())
        try await store.storeOutputs(taskID: UUID(), tenant: "a", contents: [sha256: bytes], now: Date())
        #expect(try await byteRows() == 1)
        try await store.pool.write { db in try db.execute(sql: "DELETE FROM blob_bytes") }
        await #expect(throws: BlobCorruptedError.self) { try await store.blobContents(sha256: sha256) }
        try await store.storeOutputs(taskID: UUID(), tenant: "a", contents: [sha256: bytes], now: Date())
        #expect(try await store.blobContents(sha256: sha256) == bytes)
        #expect(try await byteRows() == 1)
    }

    /// A database from before small blobs' bytes moved to `edgy-blobs.sqlite`: its blobs are
    /// served from there after the upgrade, and collected from there too.
    @Test func smallBlobsMoveToTheirOwnDatabaseOnUpgrade() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/edgy.sqlite"
        let bytes = Array("a small blob from an older edgyd".utf8)
        let sha256 = BlobDigest.sha256Hex(bytes)
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteSchema.migrator.migrate(old, upTo: "v6: webhook deliveries")
            try await old.write { db in
                try db.execute(sql: "INSERT INTO blobs (sha256, size, created_at, data) VALUES (?, ?, 0, ?)", arguments: [sha256, bytes.count, Data(bytes)])
                try db.execute(sql: "INSERT INTO blob_uploads (tenant, sha256, created_at) VALUES ('t', ?, 0)", arguments: [sha256])
            }
            try old.close()
        }
        let store = try SQLiteTaskStore(path: path)
        #expect(try await store.blobContents(sha256: sha256) == bytes)
        #expect(try await store.blob(sha256: sha256, tenant: "t")?.size == Int64(bytes.count))
        let columns = try await store.pool.read { db in try db.columns(in: "blobs").map(\.name) }
        #expect(!columns.contains("data"))
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blobdata.blob_bytes") } == 1)
        #expect(try await store.deleteUpload(sha256: sha256, tenant: "t"))
        #expect(try await store.collectGarbage(uploadsBefore: Date(timeIntervalSince1970: 0)) == 1)
        #expect(try await store.blobContents(sha256: sha256) == nil)
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blobdata.blob_bytes") } == 0)
        // The new file takes 64 KiB pages; the main database keeps its own.
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA blobdata.page_size") } == 65536)
        #expect(try await store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA blobdata.journal_mode") } == "wal")
    }
}
