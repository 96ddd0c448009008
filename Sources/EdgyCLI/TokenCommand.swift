import ArgumentParser
import EdgyAuth
import Foundation

/// `edgy token`: create, list and revoke API tokens, against a server with an admin token
/// or offline against a state directory (to bootstrap, or when the server is down).
public struct TokenCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke API tokens.",
        discussion: """
            Against a server: --server URL with an admin token (--token or EDGY_TOKEN).
            Offline: --state-dir DIR opens the daemon's SQLite store directly (as root, like the daemon).
            """,
        subcommands: [TokenCreateCommand.self, TokenListCommand.self, TokenRevokeCommand.self, TokenWebhookSecretCommand.self]
    )

    public init() {}
}

/// `edgy token webhook-secret`: the key that signs the webhooks of a token's tasks, computed from
/// the token itself (nothing is asked of a server): what a receiver verifies signatures with.
public struct TokenWebhookSecretCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "webhook-secret",
        abstract: "Print the key that signs the webhooks of a token's tasks (from --token or EDGY_TOKEN).")

    @Option(help: "The token (default: EDGY_TOKEN).") var token: String?

    public init() {}

    public func run() throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["EDGY_TOKEN"], !token.isEmpty else {
            throw ValidationError("give the token with --token or EDGY_TOKEN")
        }
        print(TokenSecret.webhookSecret(tokenHash: TokenSecret.hash(token)))
    }
}
