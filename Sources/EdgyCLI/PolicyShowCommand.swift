import ArgumentParser
import EdgyPolicy
import Foundation

/// `edgy policy show NAME|FILE`: the effective policy as TOML, with its digest.
public struct PolicyShowCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the effective policy (extends resolved, defaults filled in) as TOML."
    )

    @Argument(help: "A policy name (looked up in --policies) or a path to a .toml file.")
    public var policy: String

    @OptionGroup public var options: PolicyDirectoryOptions

    public init() {}

    public func run() async throws {
        do {
            let loaded = try Self.load(policy, directory: options.policies)
            for warning in loaded.warnings { FileHandle.standardError.write(Data("\(warning)\n".utf8)) }
            print(Self.render(loaded), terminator: "")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// A path (contains `/` or ends in `.toml`) is loaded as a file; anything else is a name in `directory`.
    public static func load(_ target: String, directory: String) throws(PolicyLoadError) -> LoadedPolicy {
        if target.contains("/") || target.hasSuffix(".toml") {
            return try PolicyLoader.load(file: target)
        }
        return try PolicyLoader.load(name: target, directory: directory)
    }

    /// The TOML text `show` prints: the rendering plus a `# digest:` comment.
    public static func render(_ loaded: LoadedPolicy) -> String {
        loaded.policy.renderTOML() + "\n# digest: \(loaded.digest)\n"
    }
}
