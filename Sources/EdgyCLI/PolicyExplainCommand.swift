import ArgumentParser
import EdgyPolicy
import EdgySeccomp

/// `edgy policy explain NAME SYSCALL`: what the policy's seccomp filter does with one syscall, and why.
public struct PolicyExplainCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain what a policy's seccomp filter does with a syscall, and by which rule."
    )

    @Argument(help: "The policy name (its file name without .toml).")
    var name: String

    @Argument(help: "A syscall name, e.g. openat.")
    var syscall: String

    @Option(help: "The policy directory.")
    var policies: String = "policies"

    public init() {}

    public func run() async throws {
        let loaded = try PolicyLoader.load(name: name, directory: policies)
        print(SeccompExplainer.explain(syscall, in: loaded.policy.seccomp))
    }
}
