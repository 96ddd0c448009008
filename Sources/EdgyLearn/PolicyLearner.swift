import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySeccomp
import Foundation

/// What to learn from: a workload (files, command, stdin) and the policy it runs under.
public struct LearningRequest: Sendable {
    /// The `--from` policy, effective (its parents applied).
    public var from: LoadedPolicy
    /// Where the `--from` policy's directory is: the proposal `extends = "base"` when that
    /// directory has a `base` policy, and is verified with it.
    public var policyDirectory: String?
    public var files: [TaskFile]
    public var command: [String]?
    public var stdin: [UInt8]
    /// Added to the policy's environment (the caller checks the keys against `task_env`).
    public var environment: [String: String]
    /// How many learning runs to merge (each one may take a different path through the program).
    public var runs: Int
    /// The proposed policy's name.
    public var name: String

    public init(from: LoadedPolicy, policyDirectory: String?, files: [TaskFile] = [], command: [String]? = nil,
                stdin: [UInt8] = [], environment: [String: String] = [:], runs: Int = 1, name: String? = nil) {
        self.environment = environment
        self.from = from
        self.policyDirectory = policyDirectory
        self.files = files
        self.command = command
        self.stdin = stdin
        self.runs = runs
        self.name = name ?? "\(from.policy.name)-learned"
    }

    /// Most learning runs one request may ask for.
    public static let maximumRuns = 10
}

/// How one run ended, in brief.
public struct LearningRunSummary: Sendable, Hashable, Codable {
    public var outcome: Outcome
    public var exitCode: Int32?
    public var signalName: String?
    public var seccompSyscall: String?
    public var wallMs: Int
    /// The run's last 2 KiB of stderr, where a failure usually says why.
    public var stderrTail: String
    public var setup: String?

    init(_ report: AttemptReport) {
        outcome = report.outcome
        exitCode = report.exitCode
        signalName = report.signalName
        seccompSyscall = report.seccompSyscall
        wallMs = report.wallMs
        stderrTail = String(decoding: report.stderr.suffix(2048), as: UTF8.self)
        setup = report.setup?.description
    }

    /// Exited 0.
    public var succeeded: Bool { outcome == .exited && exitCode == 0 }

    /// "exited 0", "exited 3", "seccomp_violation (getsid)", "killed by SIGSEGV", "setup_error: …".
    public var description: String {
        switch outcome {
        case .exited: "exited \(exitCode ?? 0)"
        case .seccompViolation: "seccomp_violation (\(seccompSyscall ?? "unknown syscall"))"
        case .signaled: "killed by \(signalName ?? "a signal")"
        case .setupError: "setup_error: \(setup ?? "unknown")"
        default: outcome.rawValue
        }
    }
}

/// The result of learning: the proposal as a policy file, what it was learned from, what it
/// removes, what was refused, and how the proposal ran.
public struct LearningResult: Sendable, Codable {
    /// The proposed policy file (TOML, with its verification and warnings in comments).
    public var proposal: String
    /// The proposal's name and digest (as `edgy policy show` would print it).
    public var name: String
    public var digest: String
    public var from: String
    public var learned: LearnedUse
    public var removed: Proposal.Removal
    public var warnings: [String]
    public var runs: [LearningRunSummary]
    public var verification: LearningRunSummary
    /// The workload succeeded under the proposal.
    public var verified: Bool
    /// Calls `--from` allows that only a verification run made (its kill named them), added to
    /// the proposal before it was verified again.
    public var addedWhileVerifying: [String]
}

public struct LearningError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The runs so far, when the workload itself failed.
    public var runs: [LearningRunSummary] = []
}

/// `edgy policy learn`: runs the workload under its `--from` policy with the learning filter,
/// merges what the runs used, proposes the smallest policy that allows it, and verifies the
/// proposal by running the workload again under it.
public enum PolicyLearner {
    /// Calls one learning may add from verification runs before it reports the proposal unverified.
    static let verificationAdditions = 3

    public static func learn(_ request: LearningRequest, supervisor: JailSupervisor) async throws(LearningError) -> LearningResult {
        guard (1...LearningRequest.maximumRuns).contains(request.runs) else {
            throw LearningError(description: "runs must be between 1 and \(LearningRequest.maximumRuns), got \(request.runs)")
        }
        let from = request.from.policy
        var use: LearnedUse?
        var runs: [LearningRunSummary] = []
        for index in 1...request.runs {
            let learner = SyscallLearner()
            var jail = JailRequest(policy: from, policyDigest: request.from.digest, files: request.files,
                                   command: request.command, stdin: request.stdin, extraEnvironment: request.environment)
            jail.learner = learner
            let report = await supervisor.run(jail)
            let summary = LearningRunSummary(report)
            runs.append(summary)
            var learned = learner.learned
            if use == nil { use = learned } else { use!.merge(learned) }
            guard summary.succeeded else {
                learned = use ?? learned
                var why = "learning run \(index) of \(request.runs) did not succeed under `\(from.name)`: \(summary.description)"
                if summary.outcome == .setupError, summary.setup?.contains("seccomp") == true, summary.setup?.contains("EBUSY") == true {
                    why += "; the kernel gave the jail no seccomp listener (a filter above this process already has one), "
                        + "and learning needs one"
                }
                if !learned.refused.isEmpty {
                    why += "; it was refused \(learned.refused.keys.sorted().joined(separator: ", ")), which `\(from.name)` does not allow"
                }
                if !summary.stderrTail.isEmpty { why += "\nits stderr ends with:\n\(summary.stderrTail)" }
                throw LearningError(description: why, runs: runs)
            }
        }
        var learned = use!
        let allowedBefore: Set<String>
        do {
            allowedBefore = try SeccompCompiler.allowedSyscallNames(from.seccomp)
        } catch {
            throw LearningError(description: "cannot read the seccomp table of `\(from.name)`: \(error)", runs: runs)
        }
        let parent = request.policyDirectory.flatMap { directory -> (name: String, policy: Policy)? in
            guard from.name != "base", let base = try? PolicyLoader.load(name: "base", directory: directory) else { return nil }
            return ("base", base.policy)
        }

        // Verify; a run killed for a call `--from` allows that no learning run made (a thread
        // that yielded this time, a timer that fired) adds that call and verifies again.
        var addedWhileVerifying: [String] = []
        var proposal: Proposal
        var loaded: LoadedPolicy
        var verification: LearningRunSummary
        while true {
            proposal = Proposal(from: from, allowedBefore: allowedBefore, use: learned, command: request.command, name: request.name)
            let draft = proposal.render(use: learned, over: parent, header: [])
            do {
                loaded = try PolicyLoader.parse(draft, name: request.name, file: "\(request.name).toml", directory: request.policyDirectory)
            } catch {
                throw LearningError(description: "the proposal does not load (a bug in learning): \(error)\n\(draft)", runs: runs)
            }
            var verifying = JailRequest(
                policy: loaded.policy, policyDigest: loaded.digest, files: request.files, command: request.command, stdin: request.stdin,
                extraEnvironment: request.environment)
            // The call that kills it must have a name, even where no listener can be had.
            verifying.tracesKillsWithoutListener = true
            verification = LearningRunSummary(await supervisor.run(verifying))
            guard !verification.succeeded, addedWhileVerifying.count < Self.verificationAdditions,
                  verification.outcome == .seccompViolation, let call = verification.seccompSyscall,
                  allowedBefore.contains(call), learned.syscalls[call] == nil
            else { break }
            learned.syscalls[call] = LearnedUse.Count(count: 1, firstMs: Double(verification.wallMs), firstRun: 0)
            addedWhileVerifying.append(call)
        }
        let commandLine = (request.command ?? from.run.command).joined(separator: " ")
        var header = [
            "Proposed by `edgy policy learn --from \(from.name)` from \(learned.runs) run\(learned.runs == 1 ? "" : "s") of: \(commandLine)",
            verification.succeeded
                ? "Verified: the workload ran again under this policy and \(verification.description)."
                : "NOT VERIFIED: under this policy the workload ended \(verification.description); merge more runs (--runs) or add what it needs.",
        ]
        if learned.tracedRuns > 0 {
            header.append("Observed through ptrace in \(learned.tracedRuns) of \(learned.runs) run\(learned.runs == 1 ? "" : "s"): a seccomp filter above this supervisor holds the listener that learning uses elsewhere.")
        }
        header += [
            "",
            "Compared with `\(from.name)`, this policy removes:",
            "  \(proposal.removed.syscalls.count) syscalls: \(proposal.removed.syscalls.joined(separator: ", "))",
        ]
        if !proposal.removed.mounts.isEmpty { header.append("  mounts: \(proposal.removed.mounts.joined(separator: ", "))") }
        if !proposal.removed.socketFamilies.isEmpty {
            header.append("  socket families: \(proposal.removed.socketFamilies.joined(separator: ", "))")
        }
        if !proposal.warnings.isEmpty {
            header += ["", "WARNING: the workload tried calls that `\(from.name)` refuses. They were refused while learning, and are not in this policy:"]
            header += proposal.warnings.map { "  \($0)" }
        }
        if !addedWhileVerifying.isEmpty {
            header += ["", "Added while verifying (no learning run made them; --runs N learns from more runs): \(addedWhileVerifying.joined(separator: ", "))"]
        }
        if !learned.destinations.isEmpty {
            header += ["", "Network destinations it tried (the [network] section is `\(from.name)`'s):"]
            header += learned.destinations.sorted { $0.key < $1.key }.map { "  \($0.key) (\(Proposal.describe($0.value)))" }
        }
        return LearningResult(
            proposal: proposal.render(use: learned, over: parent, header: wrapped(header)), name: request.name, digest: loaded.digest,
            from: from.name, learned: learned, removed: proposal.removed, warnings: proposal.warnings, runs: runs,
            verification: verification, verified: verification.succeeded, addedWhileVerifying: addedWhileVerifying)
    }

    /// Long lines (the removed syscalls) wrapped at about 100 columns, continuations indented.
    static func wrapped(_ lines: [String]) -> [String] {
        lines.flatMap { line -> [String] in
            guard line.count > 98 else { return [line] }
            let indent = String(line.prefix { $0 == " " })
            var out: [String] = []
            var current = indent
            for word in line.split(separator: " ") {
                if current.count + word.count + 1 > 98, current.count > indent.count + 4 {
                    out.append(current)
                    current = indent + "    "
                }
                current += (current.last == " " || current.isEmpty ? "" : " ") + word
            }
            out.append(current)
            return out
        }
    }
}
