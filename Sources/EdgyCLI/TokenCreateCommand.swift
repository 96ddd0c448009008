import ArgumentParser
import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStoreSQLite
import Foundation

/// `edgy token create`: prints the new token on stdout, once; details go to stderr.
public struct TokenCreateCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a token; the secret is printed once and cannot be shown again.")

    @OptionGroup public var target: TokenTarget
    @Option(help: "A name for the token, e.g. ci-runner.") public var name: String
    @Option(help: "admin, submitter or reader.") public var role: String
    @Option(help: "The tenant whose tasks the token sees.") public var tenant: String
    @Option(name: .customLong("policy"), help: "A policy the token may run (repeat; default: any its role allows).")
    public var policies: [String] = []
    @Option(name: .customLong("expires-in"), help: "Lifetime: 90s, 15m, 12h, 30d, 2w (default: none).")
    public var expiresIn: String?
    @Option(name: .customLong("callback-url"), help: "The webhook of the tasks it creates that give none (docs/webhooks.md).")
    public var callbackURL: String?
    @Flag(help: "Print the token and its details as JSON.") public var json = false

    public init() {}

    public func validate() throws {
        guard Role(rawValue: role) != nil else {
            throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let expiresIn, TokenLifetime.parse(expiresIn) == nil {
            throw ValidationError("--expires-in must be \(TokenLifetime.syntax), not \"\(expiresIn)\"")
        }
    }

    /// A `--callback-url` offline, checked as the server checks its shape (its allowlist is the
    /// server's own, applied when a task is created).
    static func checked(_ text: String) throws -> String {
        do {
            return try CallbackURL.parse(text).text
        } catch {
            throw ValidationError("--callback-url \(error.message)")
        }
    }

    public func run() async throws {
        let created: TokenInfo
        switch try target.backend() {
        case .server(let client):
            var body: [String: Any] = ["name": name, "role": role, "tenant": tenant]
            if !policies.isEmpty { body["policies"] = policies }
            if let expiresIn { body["expires_in"] = expiresIn }
            if let callbackURL { body["callback_url"] = callbackURL }
            created = try JSONDecoder().decode(TokenInfo.self, from: try await client.request("POST", "/v1/tokens", json: body))
        case .offline(let store, let audit):
            let expiresAt = expiresIn.flatMap(TokenLifetime.parse).map { Date().addingTimeInterval($0) }
            let issued: IssuedToken
            do {
                issued = try await store.issueToken(
                    name: name, role: Role(rawValue: role)!, tenant: tenant, policies: policies.isEmpty ? nil : policies, expiresAt: expiresAt,
                    callbackURL: try callbackURL.map(Self.checked))
            } catch let error as TokenRequestError {
                throw ValidationError(error.description)
            }
            audit.record(TokenTarget.offlineAudit(
                "token.create", tokenID: issued.principal.id,
                detail: "\(role) token \(issued.principal.name) for tenant \(issued.principal.tenant)"))
            created = TokenInfo(issued.principal, token: issued.token)
        }
        if json {
            print(try TokenInfo.json(created))
        } else {
            print(created.token ?? "")
            FileHandle.standardError.write(Data(
                "created \(created.role) token \(created.name) (id \(created.id)) for tenant \(created.tenant); it is shown only this once\n".utf8))
        }
    }
}
