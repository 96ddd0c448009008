import EdgyDaemon
import EdgyModel
import EdgyTestSupport
import Foundation
import Glibc
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Identity and access through a real `edgyd`: `edgy token` against the server and offline against its state
/// directory, execution roles on real policies, tenants, revocation, the audit log file and the
/// daemon's log free of tokens.
@Suite(.timeLimit(.minutes(5)))
struct AccessDaemonTests {
    struct CLIResult {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func edgy(_ arguments: [String], token: String? = nil) throws -> CLIResult {
        var environment = ProcessInfo.processInfo.environment
        environment["EDGY_TOKEN"] = token
        let run = try BoundedProcess.run(TestSupport.productsDirectory + "/edgy", arguments, environment: environment)
        return CLIResult(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
    }

    /// A request with any token (`DaemonProcess.request` always sends the admin's).
    static func request(_ daemon: DaemonProcess, _ method: String, _ path: String, token: String, json: Any? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(daemon.port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 60
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test(.tags(.root), .requiresRoot) func tokensRolesTenantsAndTheAuditLogThroughARealServer() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let server = "http://127.0.0.1:\(daemon.port)"
        let admin = daemon.token

        // `edgy token create` against the server, with the admin token from EDGY_TOKEN.
        let created = try Self.edgy(
            ["token", "create", "--server", server, "--name", "py-ci", "--role", "submitter", "--tenant", "globex", "--policy", "python", "--json"],
            token: admin)
        #expect(created.status == 0, "\(created.stderr)")
        let python = Self.object(created.stdout)
        let pythonToken = try #require(python["token"] as? String, "\(created.stdout)")
        let pythonID = try #require(python["id"] as? String)

        // Without an admin token the CLI is refused by the server.
        let refusedCLI = try Self.edgy(["token", "list", "--server", server], token: pythonToken)
        #expect(refusedCLI.status != 0)
        #expect(refusedCLI.stderr.contains("403"))

        // Its execution role: python runs, sh is refused.
        let (ran, task) = try await Self.request(daemon, "POST", "/v1/tasks?wait=30", token: pythonToken, json: ["policy": "python", "input": "print(6*7)"])
        #expect(ran == 200, "\(task)")
        #expect(task["stdout"] as? String == "42\n")
        #expect(task["tenant"] as? String == "globex")
        let (shStatus, shBody) = try await Self.request(daemon, "POST", "/v1/tasks", token: pythonToken, json: ["policy": "sh", "input": "echo hi"])
        #expect(shStatus == 403, "\(shBody)")

        // Tenants: the admin's (tenant default) task is a 404 for globex, and globex's for the admin.
        let (_, adminTask) = try await daemon.request("POST", "/v1/tasks", json: ["policy": "sh", "input": "sleep 30"])
        let adminTaskID = try #require(Self.json(adminTask)["id"] as? String)
        for (method, path) in [("GET", "/v1/tasks/\(adminTaskID)"), ("GET", "/v1/tasks/\(adminTaskID)/stdout"), ("GET", "/v1/tasks/\(adminTaskID)/events"),
                               ("POST", "/v1/tasks/\(adminTaskID)/cancel"), ("DELETE", "/v1/tasks/\(adminTaskID)")] {
            #expect(try await Self.request(daemon, method, path, token: pythonToken).0 == 404, "\(method) \(path)")
        }
        #expect(try await daemon.request("GET", "/v1/tasks/\(task["id"] as? String ?? "")").0 == 404)
        let (_, globexList) = try await Self.request(daemon, "GET", "/v1/tasks", token: pythonToken)
        #expect((globexList["tasks"] as? [[String: Any]])?.map { $0["id"] as? String } == [task["id"] as? String])
        #expect(try await daemon.request("DELETE", "/v1/tasks/\(adminTaskID)").0 == 204)

        // Offline against the running daemon's state directory: the server sees the token at once.
        let offline = try Self.edgy(["token", "create", "--state-dir", daemon.stateDirectory, "--name", "dash", "--role", "reader", "--tenant", "globex"])
        #expect(offline.status == 0, "\(offline.stderr)")
        let readerToken = offline.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let (readerList, readerBody) = try await Self.request(daemon, "GET", "/v1/tasks", token: readerToken)
        #expect(readerList == 200)
        #expect((readerBody["tasks"] as? [Any])?.count == 1)
        #expect(try await Self.request(daemon, "POST", "/v1/tasks", token: readerToken, json: ["policy": "python", "input": "1"]).0 == 403)

        // `edgy token list` against the server: both tokens, no secrets.
        let list = try Self.edgy(["token", "list", "--server", server, "--tenant", "globex", "--json"], token: admin)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("py-ci") && list.stdout.contains("dash"))
        #expect(!list.stdout.contains(pythonToken) && !list.stdout.contains(readerToken))

        // Revoked (over the server and offline) tokens are refused.
        let revoke = try Self.edgy(["token", "revoke", "--server", server, pythonID], token: admin)
        #expect(revoke.status == 0, "\(revoke.stderr)")
        #expect(try await Self.request(daemon, "GET", "/v1/tasks", token: pythonToken).0 == 401)
        let tokens = try Self.edgy(["token", "list", "--state-dir", daemon.stateDirectory, "--json"])
        let readerID = try #require(
            ((try? JSONSerialization.jsonObject(with: Data(tokens.stdout.utf8))) as? [[String: Any]])?.first { $0["name"] as? String == "dash" }?["id"] as? String)
        #expect(try Self.edgy(["token", "revoke", "--state-dir", daemon.stateDirectory, readerID]).status == 0)
        // Revoked beside the daemon, in its database: refused once the daemon's cached principal
        // lapses, within a second (as a revocation by another host sharing the database).
        let revokedAt = ContinuousClock.now
        var status = try await Self.request(daemon, "GET", "/v1/tasks", token: readerToken).0
        while status != 401 && ContinuousClock.now - revokedAt < .seconds(3) {
            try await Task.sleep(for: .milliseconds(50))
            status = try await Self.request(daemon, "GET", "/v1/tasks", token: readerToken).0
        }
        #expect(status == 401)
        #expect(ContinuousClock.now - revokedAt < .milliseconds(1500))
        #expect(try await Self.request(daemon, "GET", "/v1/tasks", token: "edgy_made_up").0 == 401)

        // The audit log file: 0600, JSON lines, every action, no token.
        let path = daemon.stateDirectory + "/audit.log"
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let entries = text.split(separator: "\n").map { Self.object(String($0)) }
        #expect(entries.allSatisfy { !$0.isEmpty })
        func has(_ action: String, _ result: String, _ check: ([String: Any]) -> Bool = { _ in true }) -> Bool {
            entries.contains { $0["action"] as? String == action && $0["result"] as? String == result && check($0) }
        }
        #expect(has("token.create", "ok") { $0["principal_name"] as? String == "admin" && $0["client"] as? String == "127.0.0.1" })
        #expect(has("token.create", "ok") { $0["client"] as? String == "cli" })
        #expect(has("token.list", "denied") { $0["principal_name"] as? String == "py-ci" })
        #expect(has("task.create", "ok") { $0["policy"] as? String == "python" && $0["tenant"] as? String == "globex" && $0["task_id"] != nil })
        #expect(has("task.create", "denied") { $0["policy"] as? String == "sh" && $0["status"] as? Int == 403 })
        #expect(has("task.cancel", "denied") { $0["task_id"] as? String == adminTaskID })
        #expect(has("task.delete", "ok") { $0["task_id"] as? String == adminTaskID && $0["tenant"] as? String == "default" })
        #expect(has("token.revoke", "ok") { $0["token_id"] as? String == pythonID })
        #expect(has("auth", "denied") { $0["detail"] as? String == "token revoked" })
        #expect(has("auth", "denied") { $0["detail"] as? String == "invalid token" })

        // The same entries through the API, for admins.
        let (auditStatus, audit) = try await daemon.request("GET", "/v1/audit?action=token.revoke")
        #expect(auditStatus == 200)
        #expect((Self.json(audit)["entries"] as? [[String: Any]])?.count == 2)

        // No token in the daemon's log or the audit log.
        daemon.stop()
        let log = daemon.log()
        #expect(log.contains("request refused"))
        for secret in [admin, pythonToken, readerToken] {
            #expect(!log.contains(secret), "a token is in edgyd's log")
            #expect(!text.contains(secret), "a token is in the audit log")
        }
    }

    @Test func tenantLimitSettings() throws {
        var settings = DaemonConfiguration()
        // Safe defaults: no tenant can fill the queue or every worker.
        #expect(settings.tenantMaxQueued == 1_000 && settings.tenantMaxRunning == 64)
        try settings.apply(environment: ["EDGY_TENANT_MAX_QUEUED": "50", "EDGY_TENANT_MAX_RUNNING": "4"])
        #expect(settings.tenantMaxQueued == 50 && settings.tenantMaxRunning == 4)
        try settings.validate()
        settings.tenantMaxRunning = 0
        #expect(throws: ConfigurationError.self) { try settings.validate() }
        #expect(throws: ConfigurationError.self) { try settings.set("tenant_max_queued", "many", source: "test") }
    }

    static func json(_ object: Any?) -> [String: Any] { object as? [String: Any] ?? [:] }

    /// Status, body and `Retry-After` of a create.
    static func create(_ daemon: DaemonProcess, token: String, _ body: [String: Any]) async throws -> (Int, [String: Any], String?) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(daemon.port)/v1/tasks")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:], http?.value(forHTTPHeaderField: "Retry-After"))
    }

    static func status(_ daemon: DaemonProcess, _ id: String, token: String) async throws -> String {
        (try await request(daemon, "GET", "/v1/tasks/\(id)", token: token).1["status"] as? String) ?? "?"
    }

    static func waitFor(_ daemon: DaemonProcess, _ id: String, token: String, _ states: Set<String>) async throws -> String {
        let deadline = Date().addingTimeInterval(30)
        var last = ""
        while Date() < deadline {
            last = try await status(daemon, id, token: token)
            if states.contains(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        return last
    }

    @Test(.tags(.root), .requiresRoot) func perTenantLimitsThroughARealServer() async throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("edgyd-limits-\(UUID().uuidString).toml").path
        try "tenant_max_queued = 2\ntenant_max_running = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        let daemon = try DaemonProcess(workers: 2, extraArguments: ["--config", config])
        defer { daemon.stop() }
        let admin = daemon.token
        let (_, globex) = try await Self.request(daemon, "POST", "/v1/tokens", token: admin, json: ["name": "g", "role": "submitter", "tenant": "globex"])
        let globexToken = try #require(globex["token"] as? String)

        // Tenant `default` runs one attempt; its next task waits although a worker is free…
        let (_, sleeper, _) = try await Self.create(daemon, token: admin, ["policy": "sh", "input": "sleep 8"])
        let sleeperID = try #require(sleeper["id"] as? String)
        #expect(try await Self.waitFor(daemon, sleeperID, token: admin, ["running"]) == "running")
        let (_, waiting, _) = try await Self.create(daemon, token: admin, ["policy": "sh", "input": "echo waited"])
        let waitingID = try #require(waiting["id"] as? String)
        // …while another tenant's task takes the free worker and finishes.
        let (_, other, _) = try await Self.create(daemon, token: globexToken, ["policy": "sh", "input": "echo other"])
        let otherID = try #require(other["id"] as? String)
        #expect(try await Self.waitFor(daemon, otherID, token: globexToken, ["succeeded", "failed"]) == "succeeded")
        #expect(try await Self.status(daemon, waitingID, token: admin) == "queued")

        // Two queued for `default` is its cap: the third create is 429 with Retry-After.
        let (second, _, _) = try await Self.create(daemon, token: admin, ["policy": "sh", "input": "echo second"])
        #expect(second == 201)
        let (refused, body, retryAfter) = try await Self.create(daemon, token: admin, ["policy": "sh", "input": "echo third"])
        #expect(refused == 429)
        #expect((body["error"] as? [String: Any])?["code"] as? String == "queue_full")
        #expect(retryAfter.flatMap(Int.init) != nil)
        // globex is under its own caps.
        #expect(try await Self.create(daemon, token: globexToken, ["policy": "sh", "input": "echo g2"]).0 == 201)

        // Once the running attempt ends, the waiting task runs.
        #expect(try await Self.request(daemon, "POST", "/v1/tasks/\(sleeperID)/cancel", token: admin).0 == 202)
        #expect(try await Self.waitFor(daemon, waitingID, token: admin, ["succeeded", "failed"]) == "succeeded")
        #expect(try await Self.request(daemon, "GET", "/v1/tasks/\(waitingID)/stdout", token: admin).0 == 200)
    }
}
