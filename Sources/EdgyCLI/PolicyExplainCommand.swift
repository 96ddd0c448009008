import ArgumentParser
import EdgyPolicy
import EdgySeccomp

/// `edgy policy explain NAME SYSCALL`: what the policy's seccomp filter does with one syscall, and
/// why; `edgy policy explain NAME --connect HOST:PORT`: whether its jails reach a destination.
public struct PolicyExplainCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain what a policy does with a syscall, or with a connection (--connect), and by which rule."
    )

    @Argument(help: "The policy name (its file name without .toml).")
    var name: String

    @Argument(help: "A syscall name, e.g. openat.")
    var syscall: String?

    @Option(help: ArgumentHelp("A destination: HOST:PORT, optionally /udp (e.g. pypi.internal:443).", valueName: "host:port"))
    var connect: String?

    @Option(help: "The policy directory.")
    var policies: String = "policies"

    public init() {}

    public func validate() throws {
        if (syscall == nil) == (connect == nil) { throw ValidationError("give either a syscall or --connect HOST:PORT") }
    }

    public func run() async throws {
        let loaded = try PolicyLoader.load(name: name, directory: policies)
        if let syscall { print(SeccompExplainer.explain(syscall, in: loaded.policy.seccomp)) }
        if let connect {
            let decision = try Self.decide(connect, network: loaded.policy.network)
            print(decision)
            if !decision.allowed { throw ExitCode(1) }
        }
    }

    /// Parses `HOST:PORT[/udp]` with the allow-list grammar and decides it.
    static func decide(_ destination: String, network: Policy.Network) throws -> EgressDecision {
        let rule: EgressRule
        do { rule = try EgressRule.parse(destination) } catch { throw ValidationError("--connect \(error.description)") }
        guard rule.ports.count == 1, let port = rule.ports.first, port.count == 1 else {
            throw ValidationError("--connect \"\(destination)\": expected HOST:PORT with one port, e.g. pypi.internal:443")
        }
        switch rule.host {
        case .network(let n) where n.prefixLength == 32:
            return network.decide(address: n.address, port: port.lowerBound, transport: rule.transport)
        case .name(let host):
            return network.decide(name: host, port: port.lowerBound, transport: rule.transport)
        default:
            throw ValidationError("--connect \"\(destination)\": expected one host (a name or an IPv4 address), not a range")
        }
    }
}
