import EdgyModel
import EdgyPostgresTestSupport
import EdgyTestSupport
import Foundation
import Glibc
import PostgresNIO
import Testing

/// Three `edgyd` processes on one PostgreSQL database: one queue, any worker runs any task,
/// exactly once; a worker that dies has its attempts taken over by the others.
@Suite(.tags(.root, .postgres), .requiresRoot, .requiresPostgres, .timeLimit(.minutes(6)))
struct ManyHostsTests {
    /// A fresh database on the test server, as a `postgres://` URL.
    static func freshDatabase() async throws -> String {
        let database = "edgy_hosts_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12))"
        _ = try await PostgresTestServer.admin { client in
            // Identifiers cannot be bound; this one is ours, made of [a-z0-9_].
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: PostgresTestServer.logger)
        }
        return PostgresTestServer.url(database: database)
    }

    static func daemons(_ count: Int, url: String, lease: Double = 30) throws -> [DaemonProcess] {
        try (0..<count).map { _ in
            try DaemonProcess(workers: 2, extraArguments: ["--store", url], environment: ["EDGY_LEASE_S": String(lease)])
        }
    }

    @Test func threeDaemonsRunAThousandTasksExactlyOnce() async throws {
        let url = try await Self.freshDatabase()
        let hosts = try Self.daemons(3, url: url)
        defer { hosts.forEach { $0.stop() } }
        let count = 1000
        // Submitted through all three APIs at once.
        let ids = try await DaemonTests.submitConcurrently(count, clients: 12, to: hosts)
        #expect(ids.count == count)
        var workersSeen = Set<String>()
        for (i, id) in ids {
            // Read back through a different host than the one that took it: every host sees every task.
            let task = try await DaemonTests.finished(hosts[(i + 1) % hosts.count], id, timeout: 300)
            #expect(task["status"] as? String == "succeeded")
            #expect(task["stdout"] as? String == "\(i)\n")
            let attempts = task["attempts"] as? [[String: Any]] ?? []
            #expect(attempts.count == 1, "task \(i) ran \(attempts.count) times")
            if let worker = attempts.first?["worker"] as? String { workersSeen.insert(worker) }
        }
        #expect(workersSeen.count == 3, "every host took part: \(workersSeen)")
        let (status, workers) = try await hosts[0].request("GET", "/v1/workers")
        #expect(status == 200)
        #expect((DaemonTests.json(workers)["workers"] as? [[String: Any]])?.count == 3)
    }

    @Test func aKilledWorkersAttemptsAreReclaimedByTheOthers() async throws {
        let url = try await Self.freshDatabase()
        let hosts = try Self.daemons(3, url: url, lease: 2)
        defer { hosts.forEach { $0.stop() } }
        var ids: [String] = []
        for i in 0..<12 {
            let (_, body) = try await hosts[i % 3].request("POST", "/v1/tasks", json: ["name": "s\(i)", "policy": "sh", "input": "sleep 1; echo ok \(i)"])
            ids.append(try #require(DaemonTests.json(body)["id"] as? String))
        }
        // Kill the first host once it runs something.
        let victim = hosts[0]
        let victimWorker = try await Self.workerID(of: victim)
        var victimRunning = false
        while !victimRunning {
            for id in ids {
                let task = DaemonTests.json(try await hosts[1].request("GET", "/v1/tasks/\(id)").1)
                let attempts = task["attempts"] as? [[String: Any]] ?? []
                if task["status"] as? String == "running", attempts.last?["worker"] as? String == victimWorker { victimRunning = true }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        victim.crash()
        var lost = 0
        for (i, id) in ids.enumerated() {
            let task = try await DaemonTests.finished(hosts[1 + i % 2], id, timeout: 120)
            #expect(task["status"] as? String == "succeeded", "\(task)")
            #expect(task["stdout"] as? String == "ok \(i)\n")
            let attempts = task["attempts"] as? [[String: Any]] ?? []
            let outcomes = attempts.compactMap { $0["outcome"] as? String }
            #expect(outcomes.last == "exited")
            if outcomes.contains("lost") {
                lost += 1
                #expect(attempts.first?["worker"] as? String == victimWorker)
                #expect(attempts.last?["worker"] as? String != victimWorker)
            }
        }
        #expect(lost >= 1, "the killed worker's attempt was taken over")
    }

    @Test func aDaemonThatLosesItsDatabaseConnectionsRecovers() async throws {
        let url = try await Self.freshDatabase()
        let hosts = try Self.daemons(1, url: url)
        defer { hosts.forEach { $0.stop() } }
        let database = String(url.split(separator: "/").last!)
        try await PostgresTestServer.terminateConnections(to: database)
        var ids: [String] = []
        for i in 0..<5 {
            var created: [String: Any] = [:]
            // The first requests may meet dead connections; the daemon reconnects.
            for _ in 0..<50 where created["id"] == nil {
                let (status, body) = try await hosts[0].request("POST", "/v1/tasks", json: ["name": "r\(i)", "policy": "sh", "input": "echo back \(i)"])
                if status == 201 { created = DaemonTests.json(body) } else { try await Task.sleep(for: .milliseconds(100)) }
            }
            ids.append(try #require(created["id"] as? String))
        }
        for (i, id) in ids.enumerated() {
            let task = try await DaemonTests.finished(hosts[0], id, timeout: 60)
            #expect(task["stdout"] as? String == "back \(i)\n")
        }
    }

    /// The worker id the daemon logged when it became ready.
    static func workerID(of host: DaemonProcess) async throws -> String {
        let log = host.log()
        let range = try #require(log.firstRange(of: "worker_id="), "no worker_id in the log: \(log)")
        return String(log[range.upperBound...].prefix { !$0.isWhitespace })
    }
}
