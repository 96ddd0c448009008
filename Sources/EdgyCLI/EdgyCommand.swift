import ArgumentParser
import EdgyModel
import Foundation

/// `edgy`: run a jail locally, check policies, talk to a server.
public struct EdgyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "edgy",
        abstract: "Edgy: run untrusted programs in Linux jails.",
        subcommands: [
            RunCommand.self, SubmitCommand.self, GetCommand.self, WaitCommand.self, LogsCommand.self, CancelCommand.self,
            ListCommand.self, DeleteCommand.self, PolicyCommand.self, TokenCommand.self, HelperCommand.self,
        ]
    )

    public init() {}
}

/// Exit codes of `edgy` itself, apart from the workload's own (documented in README).
public enum EdgyExitCode {
    /// Edgy could not run the workload: bad arguments, a bad policy, a setup error.
    public static let edgyFailed: Int32 = 125
    /// The workload ran out of wall or CPU time (as timeout(1)).
    public static let timedOut: Int32 = 124
}

/// The `edgy` executable's entry point, so that the `@main` shim stays one line.
public enum EdgyMain {
    public static func run() async {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "run", let invocation = RunInvocation.fastParse(arguments.dropFirst()) {
            exit(await invocation.run())
        }
        await EdgyCommand.main()
    }
}
