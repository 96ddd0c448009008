import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `/v1/policies`: the daemon's policies, read-only; an admin's reload, and learning a policy.
struct PolicyController: Sendable {
    let deps: APIDependencies
    let service: TaskService

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "v1/policies", use: list)
        routes.on(.post, "v1/policies/reload", use: reload)
        routes.on(.post, "v1/policies/learn", use: learn)
        routes.on(.get, "v1/policies/{name}", use: get)
    }

    /// `limits` with the TOML key names, as task `limits` overrides use them: every key.
    struct LimitsJSON: Encodable {
        let limits: Policy.Limits
        func encode(to encoder: any Encoder) throws { try LimitOverrides(all: limits).encode(to: encoder) }
    }

    struct Summary: Encodable {
        var name: String
        var description: String
        var digest: String
        var entry: String?
        var limits: LimitsJSON

        init(_ loaded: LoadedPolicy) {
            name = loaded.policy.name
            description = loaded.policy.description
            digest = loaded.digest
            entry = loaded.policy.run.entry
            limits = LimitsJSON(limits: loaded.policy.limits)
        }
    }

    struct Detail: Encodable {
        var name: String
        var description: String
        var digest: String
        var entry: String?
        var command: [String]
        var taskEnv: [String]
        var allowCommandOverride: Bool
        var maxAttempts: Int
        var roles: [String]
        var limits: LimitsJSON
        var toml: String

        enum CodingKeys: String, CodingKey {
            case name, description, digest, entry, command, limits, roles, toml
            case taskEnv = "task_env", allowCommandOverride = "allow_command_override", maxAttempts = "max_attempts"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(description, forKey: .description)
            try c.encode(digest, forKey: .digest)
            try c.encode(entry, forKey: .entry)
            try c.encode(command, forKey: .command)
            try c.encode(taskEnv, forKey: .taskEnv)
            try c.encode(allowCommandOverride, forKey: .allowCommandOverride)
            try c.encode(maxAttempts, forKey: .maxAttempts)
            try c.encode(roles, forKey: .roles)
            try c.encode(limits, forKey: .limits)
            try c.encode(toml, forKey: .toml)
        }
    }

    @Sendable func list(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let visible = deps.policies.all.filter { Access.maySee(principal, $0.policy) }
        return try jsonResponse(["policies": visible.map(Summary.init)])
    }

    @Sendable func get(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let name = try context.parameters.require("name")
        guard let loaded = deps.policies.policy(named: name), Access.maySee(principal, loaded.policy) else {
            throw APIError.policyNotFound(name)
        }
        let policy = loaded.policy
        return try jsonResponse(Detail(
            name: policy.name, description: policy.description, digest: loaded.digest, entry: policy.run.entry,
            command: policy.run.command, taskEnv: policy.run.taskEnv, allowCommandOverride: policy.run.allowCommandOverride,
            maxAttempts: policy.retry.maxAttempts, roles: policy.access.roles, limits: LimitsJSON(limits: policy.limits),
            toml: policy.renderTOML()))
    }

    struct ReloadResult: Encodable {
        var policies: [String]
        var diagnostics: [String]
        var errors: Int
    }

    @Sendable func reload(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireAdmin(principal)
        guard !deps.policies.directory.isEmpty else {
            throw APIError(.conflict, code: "not_reloadable", "this daemon's policies do not come from a directory")
        }
        let diagnostics = deps.policies.reload()
        context.logger.notice("policies reloaded", metadata: ["diagnostics": "\(diagnostics.count)"])
        return try jsonResponse(ReloadResult(
            policies: deps.policies.all.map(\.policy.name), diagnostics: diagnostics.map(\.description),
            errors: diagnostics.filter { $0.severity == .error }.count))
    }

    /// `POST /v1/policies/learn?runs=N&name=NAME`, admin only: the body is a task body (JSON or
    /// multipart, checked as for `POST /v1/tasks`); the workload runs under its policy with the
    /// learning filter, synchronously, and the answer is the proposal with its verification.
    @Sendable func learn(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireAdmin(principal)
        let query = request.uri.queryParameters
        var runs = 1
        if let text = query.get("runs") {
            guard let value = Int(text), (1...Self.maximumLearningRuns).contains(value) else {
                throw APIError.badRequest("runs must be a whole number from 1 to \(Self.maximumLearningRuns)", field: "runs")
            }
            runs = value
        }
        let name = query.get("name")
        if let name, !PolicyLoader.isValidName(name) || name.count > 64 {
            throw APIError.badRequest("name must be a policy name: no `/`, not hidden, at most 64 characters", field: "name")
        }
        guard let learning = deps.policyLearning, !deps.policies.directory.isEmpty else {
            throw APIError(.serviceUnavailable, code: "learning_unavailable", "this server runs no jails to learn with")
        }
        let kind = try TaskRequestDecoding.kind(of: request)
        let body = try await service.collectBody(request, tenant: principal.tenant)
        defer { body.share.release() }
        let draft = try await service.decodeDraft(body.bytes, kind)
        let spec = try draft.validate(principal: principal, policies: deps.policies, config: service.config, fallbackPolicy: service.config.defaultPolicy)
        context.audit.update { $0.policy = spec.policy }
        if spec.steps != nil {
            throw APIError.unprocessable("learning_unsupported", "a task with steps cannot be learned: learn each step's command on its own", field: "steps")
        }
        if let index = spec.files.firstIndex(where: { $0.blob != nil }) {
            throw APIError.unprocessable("learning_unsupported", "learning takes files inline, not blob references", field: "files[\(index)].blob")
        }
        guard let loaded = deps.policies.policy(named: spec.policy) else { throw APIError.policyNotFound(spec.policy, field: "policy") }
        var policy = loaded.policy
        do {
            policy.limits = try policy.limits.applying(spec.limits)
        } catch {
            throw APIError.unprocessable("limit_not_allowed", error.description, field: "limits.\(error.key)")
        }
        let input = PolicyLearningInput(
            policy: LoadedPolicy(policy: policy, warnings: [], path: loaded.path), policyDirectory: deps.policies.directory, files: spec.files, command: spec.command,
            stdin: spec.stdin, env: spec.env, runs: runs, name: name)
        let result: [UInt8]
        do {
            result = try await learning.learn(input)
        } catch .busy {
            throw APIError(.tooManyRequests, code: "learning_busy", "another policy is being learned on this server; try again",
                           headers: [.retryAfter: String(service.config.retryAfterSeconds)])
        } catch .failed(let message) {
            throw APIError.unprocessable("learning_failed", message, field: nil)
        }
        context.logger.notice("policy learned", metadata: ["from": "\(spec.policy)", "runs": "\(runs)"])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: result)))
    }

    static let maximumLearningRuns = 10
}
