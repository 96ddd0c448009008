import ArgumentParser

/// `edgy policy`: check and show policy files.
public struct PolicyCommand: AsyncParsableCommand {
    public static let subcommandTypes: [any ParsableCommand.Type] = [PolicyCheckCommand.self, PolicyShowCommand.self, PolicyExplainCommand.self, PolicyLearnCommand.self]

    public static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, show, explain and learn jail policy files.",
        subcommands: subcommandTypes
    )

    public init() {}
}

/// `--policies DIR`, shared by the subcommands that look policies up by name.
public struct PolicyDirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "The policy directory.")
    public var policies: String = "policies"

    public init() {}
}
