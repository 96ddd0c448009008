import ArgumentParser

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
        subcommands: [TokenCreateCommand.self, TokenListCommand.self, TokenRevokeCommand.self]
    )

    public init() {}
}
