import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import EdgyTestSupport
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import EdgyAPI

/// Identity and access through a live HTTP server (HummingbirdTesting `.live`): roles, tenants, tokens,
/// per-tenant limits, the audit log, rate limits and log hygiene.
@Suite struct AccessTests {
    // MARK: Each role's allowed and denied actions

    enum Action: String, CaseIterable, Sendable {
        case createTask, listTasks, getTask, taskStdout, cancelTask, deleteTask
        case listPolicies, reloadPolicies, createToken, listTokens, revokeToken, readAudit
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var role: Role
        var action: Action
        var status: HTTPResponse.Status
        var testDescription: String { "\(role.rawValue) \(action.rawValue) → \(status.code)" }
    }

    /// The table of roles: readers read; submitters also create, cancel and delete;
    /// only admins manage tokens, reload policies and read the audit log.
    static let table: [Row] = {
        let allowed: [Action: HTTPResponse.Status] = [
            .createTask: .created, .listTasks: .ok, .getTask: .ok, .taskStdout: .ok, .cancelTask: .ok, .deleteTask: .noContent,
            .listPolicies: .ok, .reloadPolicies: .ok, .createToken: .created, .listTokens: .ok, .revokeToken: .ok, .readAudit: .ok,
        ]
        let readerMay: Set<Action> = [.listTasks, .getTask, .taskStdout, .listPolicies]
        let submitterMay = readerMay.union([.createTask, .cancelTask, .deleteTask])
        return Action.allCases.flatMap { action in
            [
                Row(role: .admin, action: action, status: allowed[action]!),
                Row(role: .submitter, action: action, status: submitterMay.contains(action) ? allowed[action]! : .forbidden),
                Row(role: .reader, action: action, status: readerMay.contains(action) ? allowed[action]! : .forbidden),
            ]
        }
    }()

    static func token(for role: Role) -> String {
        switch role {
        case .admin: Harness.admin
        case .submitter: Harness.submitter
        case .reader: Harness.reader
        }
    }

    @Test(arguments: table)
    func roleTable(_ row: Row) async throws {
        // A catalog that can be reloaded (from the shipped policies).
        let policies = PolicyCatalog.fixed(Harness.fixturePolicies().all, directory: TestSupport.repositoryRoot + "/policies")
        let harness = try await Harness(policies: policies)
        let victim = try await harness.tokens.issueToken(name: "victim", role: .reader, tenant: "acme")
        try await harness.test(.live) { client in
            let created = try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#)
            let id = try created.taskID.uuidString.lowercased()
            let token = Self.token(for: row.role)
            let response: TestResponse
            switch row.action {
            case .createTask: response = try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#, token: token)
            case .listTasks: response = try await client.get("/v1/tasks", token: token)
            case .getTask: response = try await client.get("/v1/tasks/\(id)", token: token)
            case .taskStdout: response = try await client.get("/v1/tasks/\(id)/stdout", token: token)
            case .cancelTask: response = try await client.send(.post, "/v1/tasks/\(id)/cancel", token: token)
            case .deleteTask: response = try await client.send(.delete, "/v1/tasks/\(id)", token: token)
            case .listPolicies: response = try await client.get("/v1/policies", token: token)
            case .reloadPolicies: response = try await client.send(.post, "/v1/policies/reload", token: token)
            case .createToken: response = try await client.postJSON("/v1/tokens", #"{"name":"n","role":"reader"}"#, token: token)
            case .listTokens: response = try await client.get("/v1/tokens", token: token)
            case .revokeToken: response = try await client.send(.delete, "/v1/tokens/\(victim.principal.id)", token: token)
            case .readAudit: response = try await client.get("/v1/audit", token: token)
            }
            #expect(response.status == row.status, "\(row.testDescription): \(response.text)")
            if row.status == .forbidden { #expect(try response.error.code == "forbidden") }
        }
    }

    // MARK: Tenants

    @Test func crossTenantIsolationThroughALiveServer() async throws {
        let harness = try await Harness()
        try await harness.test(.live) { client in
            let id = try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#).taskID.uuidString
            let requests: [(HTTPRequest.Method, String)] = [
                (.get, "/v1/tasks/\(id)"), (.get, "/v1/tasks/\(id)/stdout"), (.get, "/v1/tasks/\(id)/stderr"), (.get, "/v1/tasks/\(id)/events"),
                (.post, "/v1/tasks/\(id)/cancel"), (.delete, "/v1/tasks/\(id)"), (.get, "/\(id)"), (.delete, "/\(id)"),
            ]
            for (method, uri) in requests {
                let response = try await client.send(method, uri, token: Harness.otherTenant)
                #expect(response.status == .notFound, "\(method) \(uri)")
                #expect(try response.error.code == "task_not_found")
            }
            #expect(try (await client.get("/v1/tasks", token: Harness.otherTenant).json["tasks"] as? [Any])?.isEmpty == true)
            // Even globex's admin does not see acme's tasks: tenants are walls for every role.
            let globexAdmin = try await harness.tokens.issueToken(name: "globex-admin", role: .admin, tenant: "globex")
            #expect(try await client.get("/v1/tasks/\(id)", token: globexAdmin.token).status == .notFound)
            let task = try await client.get("/v1/tasks/\(id)")
            #expect(task.status == .ok)
            #expect(try task.json["status"] as? String == "queued")
        }
    }

    // MARK: Tokens

    @Test func tokensCreatedByTheAPIHaveTheirExecutionRole() async throws {
        let harness = try await Harness()
        try await harness.test(.live) { client in
            let created = try await client.postJSON(
                "/v1/tokens", #"{"name":"node-ci","role":"submitter","tenant":"acme","policies":["node"],"expires_in":"30d"}"#, token: Harness.admin)
            #expect(created.status == .created, "\(created.text)")
            let body = try created.json
            let secret = try #require(body["token"] as? String)
            #expect(secret.hasPrefix("edgy_"))
            #expect(body["role"] as? String == "submitter")
            #expect(body["policies"] as? [String] == ["node"])
            #expect(body["state"] as? String == "active")
            #expect(body["expires_at"] is String)

            let refused = try await client.postJSON("/v1/tasks", #"{"policy":"default","input":"echo"}"#, token: secret)
            #expect(refused.status == .forbidden)
            #expect(try refused.error.field == "policy")
            #expect(try await client.postJSON("/v1/tasks", #"{"policy":"node","input":"console.log(1)"}"#, token: secret).status == .created)

            // The list never holds a secret, and the new token is in it.
            let list = try await client.get("/v1/tokens?tenant=acme", token: Harness.admin)
            #expect(list.status == .ok)
            #expect(!list.text.contains(secret))
            #expect(!list.text.contains("\"token\""))
            let tokens = try #require(try list.json["tokens"] as? [[String: Any]])
            #expect(tokens.contains { $0["name"] as? String == "node-ci" })
            #expect(tokens.allSatisfy { $0["tenant"] as? String == "acme" })

            // Bad requests name their field.
            let badRole = try await client.postJSON("/v1/tokens", #"{"name":"x","role":"root"}"#, token: Harness.admin)
            #expect(badRole.status == .badRequest)
            #expect(try badRole.error.field == "role")
            let badExpiry = try await client.postJSON("/v1/tokens", #"{"name":"x","role":"reader","expires_in":"soon"}"#, token: Harness.admin)
            #expect(try badExpiry.error.field == "expires_in")
            #expect(try await client.postJSON("/v1/tokens", #"{"name":"","role":"reader"}"#, token: Harness.admin).error.field == "name")
        }
    }

    @Test func revokedAndExpiredTokensAre401() async throws {
        let harness = try await Harness()
        try await harness.test(.live) { client in
            let created = try await client.postJSON("/v1/tokens", #"{"name":"temp","role":"reader"}"#, token: Harness.admin).json
            let secret = try #require(created["token"] as? String)
            let id = try #require(created["id"] as? String)
            #expect(try await client.get("/v1/tasks", token: secret).status == .ok)

            #expect(try await client.send(.delete, "/v1/tokens/\(id)", token: Harness.submitter).status == .forbidden)
            let revoked = try await client.send(.delete, "/v1/tokens/\(id)", token: Harness.admin)
            #expect(revoked.status == .ok)
            #expect(try revoked.json["state"] as? String == "revoked")
            let refused = try await client.get("/v1/tasks", token: secret)
            #expect(refused.status == .unauthorized)
            #expect(try refused.error.message == "token revoked")
            #expect(try await client.send(.delete, "/v1/tokens/\(UUID())", token: Harness.admin).status == .notFound)

            let shortLived = try await client.postJSON("/v1/tokens", #"{"name":"short","role":"reader","expires_in":"1s"}"#, token: Harness.admin).json
            let shortSecret = try #require(shortLived["token"] as? String)
            #expect(try await client.get("/v1/tasks", token: shortSecret).status == .ok)
            try await Task.sleep(for: .milliseconds(1100))
            let expired = try await client.get("/v1/tasks", token: shortSecret)
            #expect(expired.status == .unauthorized)
            #expect(try expired.error.message == "token expired")
            let listed = try await client.get("/v1/tokens", token: Harness.admin).json["tokens"] as? [[String: Any]] ?? []
            #expect(listed.first { $0["name"] as? String == "short" }?["state"] as? String == "expired")
        }
    }

    // MARK: Per-tenant limits

    @Test func perTenantQueueLimitAnswers429WithRetryAfter() async throws {
        let harness = try await Harness(config: APIConfiguration(maxQueuedPerTenant: 2, retryAfterSeconds: 7))
        try await harness.test(.live) { client in
            for _ in 0..<2 { #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#).status == .created) }
            let full = try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#)
            #expect(full.status == .tooManyRequests)
            #expect(full.headers[.retryAfter] == "7")
            #expect(try full.error.code == "queue_full")
            // Another tenant is not held back by acme's queue.
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#, token: Harness.otherTenant).status == .created)
            // Once acme's tasks leave the queue, it may queue again.
            _ = try await harness.store.claim(worker: "w", leaseDuration: .seconds(30), now: Date())
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#).status == .created)
        }
    }

    // MARK: Audit log

    @Test func anAuditLineIsTheEntryWithSortedKeysAndItsTimeAsText() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-audit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try AuditLog(path: directory + "/audit.log")
        let entry = AuditEntry(
            action: "task.create", result: "ok", status: 201, time: Date(timeIntervalSince1970: 1_765_000_000.25), client: "127.0.0.1",
            method: "POST", path: "/v1/tasks", taskID: UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"), policy: "default",
            detail: "a \"quoted\" word")
        #expect(log.record(entry) == nil)
        let text = try String(contentsOfFile: directory + "/audit.log", encoding: .utf8)
        #expect(text == #"{"action":"task.create","client":"127.0.0.1","detail":"a \"quoted\" word","method":"POST","path":"/v1/tasks","#
            + #""policy":"default","result":"ok","status":201,"task_id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5f","#
            + #""time":"2025-12-06T05:46:40.250Z"}"# + "\n")
        #expect(log.entries(AuditQuery()) == [entry])
    }

    @Test func auditLogRecordsEveryActionInAFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-audit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/audit.log"
        let policies = PolicyCatalog.fixed(Harness.fixturePolicies().all, directory: TestSupport.repositoryRoot + "/policies")
        let harness = try await Harness(policies: policies, audit: try AuditLog(path: path))
        let started = Date()
        var secrets = [Harness.admin, Harness.submitter, Harness.reader, Harness.otherTenant, "edgy_not_a_real_token"]
        let created: String = try await harness.test(.live) { client in
            #expect(try await client.get("/v1/tasks", token: "edgy_not_a_real_token").status == .unauthorized)
            let id = try await client.postJSON("/v1/tasks", #"{"policy":"default","input":"echo hi"}"#).taskID
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#, token: Harness.reader).status == .forbidden)
            #expect(try await client.send(.post, "/v1/tasks/\(id)/cancel").status == .ok)
            #expect(try await client.send(.delete, "/v1/tasks/\(id)", token: Harness.otherTenant).status == .notFound)
            #expect(try await client.send(.delete, "/v1/tasks/\(id)").status == .noContent)
            let token = try await client.postJSON("/v1/tokens", #"{"name":"bot","role":"submitter","tenant":"globex"}"#, token: Harness.admin).json
            let tokenID = try #require(token["id"] as? String)
            #expect(try await client.get("/v1/tokens", token: Harness.admin).status == .ok)
            #expect(try await client.send(.delete, "/v1/tokens/\(tokenID)", token: Harness.admin).status == .ok)
            #expect(try await client.send(.post, "/v1/policies/reload", token: Harness.admin).status == .ok)
            #expect(try await client.send(.post, "/v1/policies/reload", token: Harness.submitter).status == .forbidden)
            // Reads of tasks are not audited.
            #expect(try await client.get("/v1/tasks").status == .ok)

            let audit = try await client.get("/v1/audit?limit=1000", token: Harness.admin)
            #expect(audit.status == .ok)
            let entries = try #require(try audit.json["entries"] as? [[String: Any]])
            let summary = entries.map { "\($0["action"] as? String ?? "?") \($0["result"] as? String ?? "?") \($0["status"] as? Int ?? 0)" }
            #expect(summary == [
                "auth denied 401", "task.create ok 201", "task.create denied 403", "task.cancel ok 200", "task.delete denied 404",
                "task.delete ok 204", "token.create ok 201", "token.list ok 200", "token.revoke ok 200", "policy.reload ok 200",
                "policy.reload denied 403",
            ])
            let create = entries[1]
            #expect(create["principal_name"] as? String == "ci")
            #expect(create["tenant"] as? String == "acme")
            #expect(create["client"] as? String == "127.0.0.1")
            #expect(create["policy"] as? String == "default")
            #expect(create["task_id"] as? String == id.uuidString.lowercased())
            #expect(entries[4]["tenant"] as? String == "globex")
            #expect(entries[4]["task_id"] as? String == id.uuidString.lowercased())
            #expect(entries[0]["detail"] as? String == "invalid token")
            #expect(entries[0]["principal_id"] == nil)
            #expect(entries[6]["token_id"] as? String == tokenID)
            #expect(entries.allSatisfy { $0["time"] is String })

            // Filters.
            let creates = try await client.get("/v1/audit?action=task.create", token: Harness.admin).json["entries"] as? [[String: Any]]
            #expect(creates?.count == 2)
            let globex = try await client.get("/v1/audit?tenant=globex", token: Harness.admin).json["entries"] as? [[String: Any]]
            #expect(globex?.count == 1)
            let later = Date().addingTimeInterval(60).formatted(Date.ISO8601FormatStyle())
            #expect(try (await client.get("/v1/audit?since=\(later)", token: Harness.admin).json["entries"] as? [Any])?.isEmpty == true)
            let since = started.addingTimeInterval(-1).formatted(Date.ISO8601FormatStyle())
            #expect(try (await client.get("/v1/audit?since=\(since)&limit=2", token: Harness.admin).json["entries"] as? [Any])?.count == 2)
            #expect(try await client.get("/v1/audit?since=yesterday", token: Harness.admin).status == .badRequest)
            #expect(try await client.get("/v1/audit", token: Harness.reader).status == .forbidden)
            return try #require(token["token"] as? String)
        }
        secrets.append(created)

        // The file: 0600, one JSON object per line, every action and no secret.
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count >= 13)
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "\(line)")
        }
        for secret in secrets { #expect(!text.contains(secret), "a token is in the audit log") }
    }

    // MARK: Hygiene

    @Test func noTokenTextInAnyLogLine() async throws {
        let lines = LogCapture()
        var logger = Logger(label: "edgy.test") { label in lines.handler(label: label) }
        logger.logLevel = .trace
        var config = APIConfiguration()
        config.authFailureLimit = 0  // every bad token below is looked at, and could be logged
        let harness = try await Harness(config: config)
        let app = Application(router: buildRouter(harness.deps, harness.config), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        var secrets = [Harness.admin, Harness.submitter, Harness.reader, Harness.otherTenant, Harness.limited, Harness.expired, Harness.revoked]
        let wrong = "edgy_wrong_\(UUID().uuidString)"
        secrets.append(wrong)
        let tried = secrets
        let created: String = try await app.test(.live) { client in
            for token in tried {
                _ = try await client.get("/v1/tasks", token: token)
                _ = try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#, token: token)
                _ = try await client.get("/no/such/route", token: token)
                _ = try await client.send(.post, "/v1/policies/reload", token: token)
            }
            _ = try await client.execute(uri: "/v1/tasks", method: .get, headers: [.authorization: "Basic \(wrong)"])
            let token = try await client.postJSON("/v1/tokens", #"{"name":"logged?","role":"reader"}"#, token: Harness.admin).json
            let secret = try #require(token["token"] as? String)
            _ = try await client.get("/v1/tasks", token: secret)
            return secret
        }
        secrets.append(created)
        let text = lines.text
        #expect(text.contains("request refused"), "the capture saw nothing: \(text)")
        #expect(text.contains("token created"))
        for secret in secrets { #expect(!text.contains(secret), "a token is in the log") }
        // Nor a fragment long enough to matter.
        for secret in secrets { #expect(!text.contains(secret.dropFirst(5).prefix(12))) }
    }

    @Test func failedAuthenticationIsRateLimitedPerAddress() async throws {
        var config = APIConfiguration()
        config.authFailureLimit = 3
        config.authFailureWindow = .seconds(2)
        let harness = try await Harness(config: config)
        try await harness.test(.live) { client in
            for _ in 0..<3 { #expect(try await client.get("/v1/tasks", token: "edgy_guess").status == .unauthorized) }
            let limited = try await client.get("/v1/tasks", token: "edgy_guess")
            #expect(limited.status == .tooManyRequests)
            #expect(try limited.error.code == "too_many_failures")
            let retry = try #require(limited.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...2).contains(retry))
            // Its failures are refused until the window ends; a valid token is still served.
            #expect(try await client.get("/v1/tasks", token: nil).status == .tooManyRequests)
            #expect(try await client.get("/v1/tasks").status == .ok)
            try await Task.sleep(for: .milliseconds(2100))
            #expect(try await client.get("/v1/tasks").status == .ok)
        }
        let failures = harness.deps.audit.entries(AuditQuery(action: "auth"))
        #expect(failures.count == 3)
        #expect(failures.allSatisfy { $0.client == "127.0.0.1" && $0.result == "denied" })
    }

    @Test func limiterWindows() {
        let limiter = AuthFailureLimiter(limit: 2, window: .seconds(60))
        let start = ContinuousClock.now
        #expect(limiter.retryAfter("a", now: start) == nil)
        #expect(limiter.recordFailure("a", now: start) == false)
        #expect(limiter.recordFailure("a", now: start + .seconds(1)) == true)
        #expect(limiter.retryAfter("a", now: start + .seconds(1)) == 59)
        #expect(limiter.retryAfter("b", now: start + .seconds(1)) == nil)
        #expect(limiter.retryAfter("a", now: start + .seconds(60)) == nil)
        #expect(AuthFailureLimiter(limit: 0, window: .seconds(60)).recordFailure("a") == false)
    }

    @Test(arguments: [
        ("POST", "/", "task.create"), ("PUT", "/", "task.create"), ("POST", "/v1/tasks", "task.create"),
        ("POST", "/v1/tasks/0B6E7C36-0A44-4F30-8F0B-2C5A4A2B9D01/cancel", "task.cancel"),
        ("DELETE", "/v1/tasks/0B6E7C36-0A44-4F30-8F0B-2C5A4A2B9D01", "task.delete"),
        ("DELETE", "/0B6E7C36-0A44-4F30-8F0B-2C5A4A2B9D01", "task.delete"),
        ("POST", "/v1/tokens", "token.create"), ("GET", "/v1/tokens", "token.list"),
        ("DELETE", "/v1/tokens/0B6E7C36-0A44-4F30-8F0B-2C5A4A2B9D01", "token.revoke"),
        ("POST", "/v1/policies/reload", "policy.reload"), ("GET", "/v1/audit", "audit.read"),
        ("POST", "/v1/blobs", "blob.upload"), ("DELETE", "/v1/blobs/sha256:00", "blob.delete"), ("GET", "/v1/blobs/sha256:00", ""),
        ("GET", "/v1/tasks/x/files/out/a.txt", ""), ("GET", "/v1/tasks", ""), ("GET", "/v1/tasks/x", ""), ("GET", "/v1/policies", ""), ("GET", "/x", ""),
    ])
    func auditedActions(method: String, path: String, action: String) {
        let audited = AuditedAction(method: HTTPRequest.Method(method)!, path: path)
        #expect(audited?.name ?? "" == action)
        if action.hasPrefix("task."), path.count > 10 { #expect(audited?.taskID != nil) }
    }

    @Test func constantTimeAndLifetimes() {
        #expect(ConstantTime.equals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!ConstantTime.equals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!ConstantTime.equals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(TokenLifetime.parse("30d") == TimeInterval(30 * 86_400))
        #expect(TokenLifetime.parse("90s") == 90)
        #expect(TokenLifetime.parse("2w") == TimeInterval(2 * 604_800))
        #expect(TokenLifetime.parse("1.5h") == 5400)
        for bad in ["", "d", "30", "-1d", "0m", "3y", "nand"] { #expect(TokenLifetime.parse(bad) == nil, "\(bad)") }
    }
}

/// Collects every log line (message and metadata) in memory.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    func handler(label: String) -> some LogHandler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let text = "\(event.level) \(event.message) \(all.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " "))"
            capture.lines.withLock { $0.append(text) }
        }
    }
}
