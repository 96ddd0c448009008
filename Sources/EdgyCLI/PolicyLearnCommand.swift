import ArgumentParser
import EdgyJail
import EdgyLearn
import EdgyModel
import EdgyPolicy
import Foundation

/// `edgy policy learn --from NAME -- CMD…`: runs the workload in a jail of the `--from` policy
/// that records every syscall, file and destination it uses, and prints the smallest policy that
/// runs it, verified by running the workload again under it.
public struct PolicyLearnCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "learn",
        abstract: "Run a workload once (or --runs N times) and propose the smallest policy that runs it.",
        discussion: """
            The workload runs with every isolation and limit of the --from policy; only its seccomp \
            filter changes: each syscall is recorded, then run when --from allows it and refused \
            (with EPERM, or --from's errno) when it does not. The proposal extends `base` when the \
            policy directory has one, allows only the syscalls used (each commented with its count \
            and first use), keeps only the mounts a used path lies under, and is verified by running \
            the workload again under it. Calls --from refuses are warnings, never entries.

            Output: the proposed policy file on stdout (or --output FILE), with what it removes, the \
            verification and any warnings in its comments; --json prints the whole result instead. \
            Exit status: 0 when verified, 1 when the proposal did not run the workload, \
            \(EdgyExitCode.edgyFailed) when learning itself failed (bad arguments, the workload failing \
            under --from, a setup error).
            """
    )

    @Option(name: .long, help: "The policy to learn from: a name in --policies or a .toml file.")
    var from: String

    @Option(name: .long, help: "How many learning runs to merge (1–\(LearningRequest.maximumRuns)).")
    var runs = 1

    @Option(name: .long, help: "The proposed policy's name (default: FROM-learned).")
    var name: String?

    @Option(name: [.short, .long], help: "Write the proposal to this file instead of stdout.")
    var output: String?

    @Flag(name: .long, help: "Print the whole result (proposal, what was used, removed, warnings, runs) as JSON.")
    var json = false

    @OptionGroup var options: PolicyDirectoryOptions

    @OptionGroup var workload: WorkloadOptions

    public init() {}

    public mutating func validate() throws {
        guard (1...LearningRequest.maximumRuns).contains(runs) else {
            throw ValidationError("--runs must be between 1 and \(LearningRequest.maximumRuns), got \(runs)")
        }
        if let name, !PolicyLoader.isValidName(name) { throw ValidationError("--name `\(name)` is not a policy name") }
    }

    public func run() async throws {
        let loaded: LoadedPolicy
        do {
            loaded = try PolicyShowCommand.load(from, directory: options.policies)
        } catch {
            fail(error.description)
        }
        let directory = from.contains("/") || from.hasSuffix(".toml")
            ? URL(fileURLWithPath: from).deletingLastPathComponent().path : options.policies
        let supervisor = WorkloadOptions.supervisor(cgroups: !workload.noCgroup)
        let files: [TaskFile], stdin: [UInt8]
        do {
            files = try HostFiles.read(workload.files)
            stdin = try workload.stdin.map(HostFiles.readStdin) ?? []
        } catch {
            fail(error.message)
        }
        let request = LearningRequest(
            from: loaded, policyDirectory: directory, files: files,
            command: workload.command.isEmpty ? nil : workload.command, stdin: stdin, runs: runs, name: name)
        let result: LearningResult
        do {
            result = try await PolicyLearner.learn(request, supervisor: supervisor)
        } catch {
            fail(error.description)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            let data = (try? encoder.encode(result)) ?? Data()
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(result.proposal.utf8)) else {
                fail("cannot write \(output)")
            }
        } else {
            print(result.proposal, terminator: "")
        }
        printError("edgy: learned `\(result.name)` from \(result.learned.runs) run\(result.learned.runs == 1 ? "" : "s"): "
            + "\(result.learned.syscalls.count) syscalls allowed, \(result.removed.syscalls.count) removed; "
            + (result.verified ? "verified (\(result.verification.description))" : "NOT verified: \(result.verification.description)")
            + (result.warnings.isEmpty ? "" : "; \(result.warnings.count) warning\(result.warnings.count == 1 ? "" : "s")"))
        for warning in result.warnings { printError("edgy: warning: \(warning)") }
        if !result.verified { throw ExitCode.failure }
    }
}
