import EdgyPolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `/v1/policies`: the daemon's policies, read-only, and an admin's reload.
struct PolicyController: Sendable {
    let deps: APIDependencies

    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "v1/policies", use: list)
        routes.on(.post, "v1/policies/reload", use: reload)
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
}
