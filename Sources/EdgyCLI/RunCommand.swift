import ArgumentParser
import EdgyCgroup
import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySeccomp
import EdgySystem
import Foundation

/// `edgy run`: one jail, no server (like nsjail). Streams the workload's output, prints a short
/// report on stderr (or the whole report as JSON), exits with the workload's exit code.
public struct RunCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one command in a jail and report how it ended.",
        discussion: """
            Exit status: the workload's exit code; 128+N when it was killed by signal N; \
            \(EdgyExitCode.timedOut) when it ran out of wall or CPU time; \(EdgyExitCode.edgyFailed) when \
            Edgy itself could not run it (bad arguments or policy, a setup error).
            """
    )

    @Option(name: .long, help: "The policy file (default: policies/default.toml).")
    var policy: String = "policies/default.toml"

    @Flag(name: .long, help: "Print the whole report as JSON on stdout instead of streaming the output.")
    var json = false

    @OptionGroup var workload: WorkloadOptions

    public init() {}

    /// What was asked, without ArgumentParser's property wrappers.
    var invocation: RunInvocation {
        RunInvocation(
            policy: policy, files: workload.files, stdin: workload.stdin, json: json, noCgroup: workload.noCgroup, command: workload.command)
    }

    public func run() async throws {
        throw ExitCode(await invocation.run())
    }

    /// One line for humans: "edgy: exited 3 after 4 ms (cpu 2+3 ms, max rss 5.7 MiB)".
    static func summary(_ report: AttemptReport) -> String {
        var what: String
        switch report.outcome {
        case .exited: what = "exited \(report.exitCode ?? 0)"
        case .signaled: what = "killed by \(report.signalName ?? "a signal")"
        case .setupError: what = "setup failed: \(report.setup?.description ?? "unknown")"
        default: what = report.outcome.rawValue
        }
        var line = "edgy: \(what) after \(report.wallMs) ms (cpu \(report.cpuUserMs)+\(report.cpuSysMs) ms, max rss \(mebibytes(UInt64(max(0, report.maxRssKib)) * 1024)) MiB"
        if let peak = report.memoryPeakBytes { line += ", memory peak \(mebibytes(peak)) MiB" }
        if report.stdoutTruncatedBytes > 0 { line += ", stdout truncated by \(report.stdoutTruncatedBytes) bytes" }
        if report.stderrTruncatedBytes > 0 { line += ", stderr truncated by \(report.stderrTruncatedBytes) bytes" }
        return line + ")"
    }

    /// `bytes` in MiB with one decimal, rounded half up: "5.7". (`String(format:)` costs a
    /// Foundation formatter and its locale at every `edgy run`.)
    static func mebibytes(_ bytes: UInt64) -> String {
        let tenths = (bytes * 10 + 524_288) / 1_048_576
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// The workload's exit code, 128+signal, or one of `EdgyExitCode`.
    static func exitStatus(_ report: AttemptReport) -> Int32 {
        switch report.outcome {
        case .exited: return report.exitCode ?? 0
        case .wallTimeout, .cpuTimeout: return EdgyExitCode.timedOut
        case .setupError, .lost, .dependencyError: return EdgyExitCode.edgyFailed
        default: return 128 + (report.signal ?? 9)
        }
    }
}

func printError(_ message: String) {
    // write(2), not FileHandle: `Data`'s generic initializers are instantiated at run time, which
    // every `edgy run` would pay for its last line.
    writeFully(2, Array((message + "\n").utf8))
}

/// Where a run's output and Edgy's own lines go: this process's stdout and stderr, or those an
/// `edgy helper` client handed over.
struct RunOutput: Sendable {
    var stdout: Int32 = 1
    var stderr: Int32 = 2

    /// One line on stderr.
    func message(_ text: String) {
        writeFully(stderr, Array((text + "\n").utf8))
    }
}

func fail(_ message: String) -> Never {
    printError("edgy: \(message)")
    exit(EdgyExitCode.edgyFailed)
}

/// One `edgy run`, as parsed. `edgy run` is the command whose start-up time matters (a jail per
/// call, in scripts and benchmarks), and ArgumentParser's reflection and protocol-conformance
/// lookups cost more than the jail itself: `fastParse` reads the common forms by hand and leaves
/// everything else (help, errors, anything unusual) to ArgumentParser, which gives the same result.
struct RunInvocation: Equatable {
    var policy = "policies/default.toml"
    var files: [String] = []
    var stdin: String?
    var json = false
    var noCgroup = false
    var command: [String] = []

    /// The invocation for `edgy run ARGS`, or nil when ArgumentParser should read ARGS instead.
    static func fastParse(_ arguments: ArraySlice<String>) -> RunInvocation? {
        var invocation = RunInvocation()
        var seen: Set<String> = []
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "--" {
                invocation.command = Array(rest)
                return invocation
            }
            let name: String
            var value: String?
            if let equals = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            } else {
                name = argument
            }
            switch name {
            case "--json", "--no-cgroup":
                guard value == nil, seen.insert(name).inserted else { return nil }
                if name == "--json" { invocation.json = true } else { invocation.noCgroup = true }
            case "--policy", "--stdin", "--file":
                if value == nil { value = rest.popFirst() }
                guard let value, !value.isEmpty, !value.hasPrefix("-") else { return nil }
                switch name {
                case "--file":
                    guard value.contains("=") else { return nil }
                    invocation.files.append(value)
                case "--policy":
                    guard seen.insert(name).inserted else { return nil }
                    invocation.policy = value
                default:
                    guard seen.insert(name).inserted else { return nil }
                    invocation.stdin = value
                }
            default:
                return nil
            }
        }
        return invocation
    }

    /// Runs the jail from this process; the exit status for the process.
    func run() async -> Int32 {
        let output = RunOutput()
        let request: JailRequest
        do {
            request = try self.request(output: output)
        } catch {
            fail(error.message)
        }
        SeccompCache.shared.keepOnDisk(Self.seccompCache(ProcessInfo.processInfo.environment["EDGY_SECCOMP_CACHE"]))
        return await run(request, on: WorkloadOptions.supervisor(cgroups: !noCgroup), output: output).status
    }

    /// The jail's request: the policy (read by `loadPolicy`) and the host files, read from the
    /// working directory. The policy's warnings go to `output`.
    func request(
        output: RunOutput, loadPolicy: (String) throws(PolicyLoadError) -> LoadedPolicy = PolicyLoader.load(file:)
    ) throws(RunFailure) -> JailRequest {
        let loaded: LoadedPolicy
        do {
            loaded = try loadPolicy(policy)
        } catch {
            throw RunFailure(message: error.description)
        }
        for warning in loaded.warnings { output.message("\(warning)") }
        return JailRequest(
            policy: loaded.policy, policyDigest: loaded.digest, files: try HostFiles.read(files),
            command: command.isEmpty ? nil : command, stdin: try stdin.map(HostFiles.readStdin) ?? [])
    }

    /// Runs `request` on `supervisor`: streams its output (or, with `--json`, writes its report) to
    /// `output`; returns the exit status and the one-line summary. Cancelling the calling task
    /// kills the jail.
    func run(_ request: JailRequest, on supervisor: JailSupervisor, output: RunOutput) async -> (status: Int32, summary: String) {
        let streaming = !json
        let report = await supervisor.run(request) { kind, bytes in
            guard streaming else { return }
            writeFully(kind == .stdout ? output.stdout : output.stderr, Array(bytes))
        }
        let summary = RunCommand.summary(report)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            if let data = try? encoder.encode(report) {
                writeFully(output.stdout, Array(data) + [UInt8(ascii: "\n")])
            }
        } else {
            output.message(summary)
        }
        return (RunCommand.exitStatus(report), summary)
    }

    /// Where compiled filters are kept between runs: `EDGY_SECCOMP_CACHE` names a directory, or is
    /// `off`; by default `/run/edgy/seccomp`.
    static func seccompCache(_ setting: String?) -> SeccompDiskCache? {
        switch setting {
        case nil, "": SeccompDiskCache(directory: SeccompDiskCache.defaultDirectory)
        case "off": nil
        case let directory?: SeccompDiskCache(directory: directory)
        }
    }
}
