import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import EdgyAPI

/// An API over in-memory stores, fixed policies and a set of tokens.
struct Harness {
    static let admin = "edgy_admin_token"
    static let submitter = "edgy_submitter_token"
    static let reader = "edgy_reader_token"
    static let otherTenant = "edgy_globex_token"
    static let limited = "edgy_limited_token"
    static let expired = "edgy_expired_token"
    static let revoked = "edgy_revoked_token"

    let store = InMemoryTaskStore()
    let tokens = InMemoryTokenStore()
    let notifier = TaskNotifier()
    let policies: PolicyCatalog
    let config: APIConfiguration
    let deps: APIDependencies

    static func fixturePolicies() -> PolicyCatalog {
        var sh = Policy(name: "default", description: "shell")
        sh.run = .init(command: ["/bin/sh", "{entry}"], entry: "main.sh", taskEnv: ["GREETING"], allowCommandOverride: true)
        var node = Policy(name: "node", description: "node")
        node.run = .init(command: ["/usr/bin/node", "{entry}"], entry: "main.js")
        node.limits.memoryMib = 512
        var raw = Policy(name: "raw", description: "bring your own command")
        raw.run = .init(command: [], allowCommandOverride: true)
        var adminOnly = Policy(name: "adminonly", description: "admins only")
        adminOnly.run = .init(command: ["/bin/true"])
        adminOnly.access = .init(roles: [])
        return PolicyCatalog.fixed([sh, node, raw, adminOnly].map { LoadedPolicy(policy: $0, warnings: [], path: "\($0.name).toml") })
    }

    init(
        config: APIConfiguration = APIConfiguration(), policies: PolicyCatalog = Harness.fixturePolicies(), ready: Bool = true,
        audit: AuditLog = AuditLog()
    ) async throws {
        self.config = config
        self.policies = policies
        // Through the cache edgyd puts in front of its store, so every test also checks that it
        // changes no answer.
        self.deps = APIDependencies(store: store, tokens: CachingTokenStore(tokens), policies: policies, notifier: notifier, audit: audit, readiness: { ready })
        let now = Date()
        let entries: [(String, Principal)] = [
            (Self.admin, Principal(name: "admin", role: .admin, tenant: "acme")),
            (Self.submitter, Principal(name: "ci", role: .submitter, tenant: "acme")),
            (Self.reader, Principal(name: "dash", role: .reader, tenant: "acme")),
            (Self.otherTenant, Principal(name: "globex-ci", role: .submitter, tenant: "globex")),
            (Self.limited, Principal(name: "node-only", role: .submitter, tenant: "acme", policies: ["node"])),
            (Self.expired, Principal(name: "old", role: .submitter, tenant: "acme", expiresAt: now.addingTimeInterval(-1))),
            (Self.revoked, Principal(name: "gone", role: .submitter, tenant: "acme", revokedAt: now.addingTimeInterval(-1))),
        ]
        for (token, principal) in entries {
            try await tokens.insertToken(principal, tokenHash: TokenSecret.hash(token))
        }
    }

    var app: some ApplicationProtocol {
        Application(router: buildRouter(deps, config), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    func test<T: Sendable>(_ setup: TestingSetup = .router, _ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await app.test(setup, body)
    }

    /// Plays a worker: claims the next task, writes output events, finishes it with a report.
    func runWorker(stdout: String = "3\n", stderr: String = "", outcome: Outcome = .exited, exitCode: Int32 = 0,
                   disposition: AttemptDisposition = .succeeded, delay: Duration = .zero) async throws -> UUID? {
        if delay > .zero { try await Task.sleep(for: delay) }
        // The request that creates the task may not have reached the store yet: keep trying for a while.
        var claim = try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: Date())
        for _ in 0..<500 where claim == nil {
            try await Task.sleep(for: .milliseconds(10))
            claim = try await store.claim(worker: "w1", leaseDuration: .seconds(30), now: Date())
        }
        guard let claimed = claim else { return nil }
        notifier.changed(claimed.task.id, .running)
        if !stdout.isEmpty { try await store.appendOutput(taskID: claimed.task.id, attempt: claimed.attempt, kind: .stdout, data: stdout, now: Date()) }
        if !stderr.isEmpty { try await store.appendOutput(taskID: claimed.task.id, attempt: claimed.attempt, kind: .stderr, data: stderr, now: Date()) }
        notifier.changed(claimed.task.id, .output)
        let report = AttemptReport(outcome: outcome, exitCode: exitCode, wallMs: 3, stdout: Array(stdout.utf8), stderr: Array(stderr.utf8), policyName: claimed.task.spec.policy)
        _ = try await store.finishAttempt(taskID: claimed.task.id, attempt: claimed.attempt, worker: "w1", outcome: outcome, report: report, disposition: disposition, now: Date())
        notifier.changed(claimed.task.id, .ended)
        return claimed.task.id
    }

    func taskCount() async throws -> Int {
        try await store.list(TaskQuery(limit: 10_000)).tasks.count
    }
}

// MARK: Request helpers

func headers(_ token: String?, contentType: String? = nil, extra: HTTPFields = [:]) -> HTTPFields {
    var fields = extra
    if let token { fields[.authorization] = "Bearer \(token)" }
    if let contentType { fields[.contentType] = contentType }
    return fields
}

extension TestClientProtocol {
    func postJSON(_ uri: String, _ json: String, token: String? = Harness.submitter) async throws -> TestResponse {
        try await execute(uri: uri, method: .post, headers: headers(token, contentType: "application/json"), body: ByteBuffer(string: json))
    }

    func get(_ uri: String, token: String? = Harness.submitter, extra: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers(token, extra: extra))
    }

    func send(_ method: HTTPRequest.Method, _ uri: String, token: String? = Harness.submitter) async throws -> TestResponse {
        try await execute(uri: uri, method: method, headers: headers(token))
    }

    func multipart(_ form: MultipartForm, method: HTTPRequest.Method = .post, uri: String = "/v1/tasks", token: String? = Harness.submitter) async throws -> TestResponse {
        try await execute(uri: uri, method: method, headers: headers(token, contentType: form.contentType), body: ByteBuffer(bytes: form.body))
    }
}

/// Builds a multipart/form-data body the way curl does.
struct MultipartForm {
    var boundary = "------------------------4948ac1ae613f5b0"
    var body: [UInt8] = []

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    mutating func field(_ name: String, _ value: String) {
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
    }

    mutating func file(_ name: String = "file", filename: String, type: String = "application/octet-stream", _ contents: [UInt8]) {
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(type)\r\n\r\n".utf8)
        body += contents
        body += Array("\r\n".utf8)
    }

    func finished() -> MultipartForm {
        var copy = self
        copy.body += Array("--\(boundary)--\r\n".utf8)
        return copy
    }
}

extension TestResponse {
    var json: [String: Any] {
        get throws {
            let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView))
            return try #require(object as? [String: Any])
        }
    }

    /// The `id` of a task body.
    var taskID: UUID {
        get throws {
            let text = try #require(try json["id"] as? String)
            return try #require(UUID(uuidString: text))
        }
    }

    var text: String { String(buffer: body) }

    /// `(code, field)` of an error body.
    var error: (code: String, message: String, field: String?) {
        get throws {
            let error = try #require(try json["error"] as? [String: Any])
            return (try #require(error["code"] as? String), try #require(error["message"] as? String), error["field"] as? String)
        }
    }
}
