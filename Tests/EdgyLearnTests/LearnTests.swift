import EdgyJail
import EdgyLearn
import EdgyModel
import EdgyPolicy
import EdgySeccomp
import EdgyTestSupport
import Foundation
import Testing

/// Learning a policy from real workloads in real jails: the proposal runs what it was learned
/// from, allows nothing the `--from` policy did not, and kills what the workload did not do.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct LearnTests {
    static let policies = TestSupport.repositoryRoot + "/policies"

    static func load(_ name: String) throws -> LoadedPolicy {
        try PolicyLoader.load(name: name, directory: policies)
    }

    static func sample(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: TestSupport.repositoryRoot + "/sample/" + file)))
    }

    static func learn(_ request: LearningRequest) async throws -> LearningResult {
        let supervisor = try TestSupport.supervisor()
        do {
            return try await PolicyLearner.learn(request, supervisor: supervisor)
        } catch {
            Issue.record("learning failed: \(error.description)")
            throw error
        }
    }

    /// Runs `files` under the proposal text, loaded as an operator would load the file.
    static func runProposal(_ result: LearningResult, files: [TaskFile], command: [String]? = nil) async throws -> AttemptReport {
        let loaded = try PolicyLoader.parse(result.proposal, name: result.name, file: "\(result.name).toml", directory: policies)
        return try await TestSupport.supervisor().run(JailRequest(policy: loaded.policy, policyDigest: loaded.digest, files: files, command: command))
    }

    @Test(arguments: [
        ("python", "python.py", "main.py", "hello from python\n"),
        ("node", "node.js", "main.js", "hello from node\n"),
        ("sh", "sh.sh", "main.sh", "hello from sh\n"),
        ("default", "default.sh", "main.sh", "hello from default\n"),
        ("c", "c.c", "main.c", nil),
    ] as [(String, String, String, String?)])
    func learningAShippedSampleProposesAPolicyThatRunsIt(policy: String, sample: String, entry: String, expected: String?) async throws {
        let from = try Self.load(policy)
        let files = [TaskFile(path: entry, contents: try Self.sample(sample))]
        let shipped = try await TestSupport.supervisor().run(JailRequest(policy: from.policy, policyDigest: from.digest, files: files))
        #expect(shipped.outcome == .exited && shipped.exitCode == 0, "\(shipped.stderrText)")
        if let expected { #expect(shipped.stdoutText == expected) }

        let result = try await Self.learn(LearningRequest(from: from, policyDirectory: Self.policies, files: files))
        #expect(result.verified, "\(result.verification.description): \(result.verification.stderrTail)")
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        #expect(result.proposal.contains("extends = \"base\""))

        let proposed = try PolicyLoader.parse(result.proposal, name: result.name, file: "p.toml", directory: Self.policies).policy
        let allowedBefore = try SeccompCompiler.allowedSyscallNames(from.policy.seccomp)
        let allowedAfter = try SeccompCompiler.allowedSyscallNames(proposed.seccomp)
        #expect(allowedAfter.isSubset(of: allowedBefore), "allowed beyond \(policy): \(allowedAfter.subtracting(allowedBefore).sorted())")
        #expect(allowedAfter.count < allowedBefore.count / 2, "only \(allowedBefore.count - allowedAfter.count) removed")
        #expect(Set(proposed.mounts).isSubset(of: Set(from.policy.mounts)))
        #expect(Set(proposed.seccomp.socketFamilies).isSubset(of: Set(from.policy.seccomp.socketFamilies)))

        // The file as printed runs the sample, with the same output as the shipped policy.
        let rerun = try await Self.runProposal(result, files: files)
        #expect(rerun.outcome == .exited && rerun.exitCode == 0, "\(rerun.outcome) \(rerun.seccompSyscall ?? "") \(rerun.stderrText)")
        #expect(rerun.stdoutText == shipped.stdoutText)
    }

    /// A path the learning runs never took calls a syscall nobody recorded: under the proposal
    /// the filter kills it, and the report names the call.
    @Test func aSyscallTheLearningRunsNeverMadeIsKilledAndNamed() async throws {
        let from = try Self.load("python")
        let program = Array("""
            import os
            if open("mode").read().strip() == "late":
                print(os.getsid(0))
            print("done")
            """.utf8)
        func files(_ mode: String) -> [TaskFile] {
            [TaskFile(path: "main.py", contents: program), TaskFile(path: "mode", contents: Array(mode.utf8))]
        }
        let result = try await Self.learn(LearningRequest(from: from, policyDirectory: Self.policies, files: files("early")))
        #expect(result.verified)
        #expect(result.learned.syscalls["getsid"] == nil)
        #expect(try SeccompCompiler.allowedSyscallNames(from.policy.seccomp).contains("getsid"), "the test needs a call python allows")

        let early = try await Self.runProposal(result, files: files("early"))
        #expect(early.outcome == .exited && early.stdoutText == "done\n")
        let late = try await Self.runProposal(result, files: files("late"))
        #expect(late.outcome == .seccompViolation)
        #expect(late.seccompSyscall == "getsid")
        // Under the policy it was learned from, the same run succeeds.
        let shipped = try await TestSupport.supervisor().run(JailRequest(policy: from.policy, files: files("late")))
        #expect(shipped.outcome == .exited && shipped.exitCode == 0)

        // Merging a second run that takes the other path adds the call, with the run it came from.
        var merged = result.learned
        let second = try await Self.learn(LearningRequest(from: from, policyDirectory: Self.policies, files: files("late")))
        merged.merge(second.learned)
        #expect(merged.runs == 2)
        #expect(merged.syscalls["getsid"]?.firstRun == 2)
    }

    /// ptrace and mount are on base's deny list: tried while learning, they are refused (the
    /// workload sees EPERM and goes on), reported as warnings, and never allowed.
    @Test func deniedCallsAreWarningsNeverEntries() async throws {
        let from = try Self.load("python")
        let program = Array("""
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            print("ptrace", libc.ptrace(0, 0, 0, 0), ctypes.get_errno())
            print("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())
            """.utf8)
        let files = [TaskFile(path: "main.py", contents: program)]
        let result = try await Self.learn(LearningRequest(from: from, policyDirectory: Self.policies, files: files))
        #expect(result.runs.first?.succeeded == true)
        #expect(result.learned.refused["ptrace"]?.errno == "EPERM")
        #expect(result.learned.refused["mount"]?.reason == "on the deny list")
        #expect(result.warnings.contains { $0.hasPrefix("ptrace: on the deny list") }, "\(result.warnings)")
        #expect(result.warnings.contains { $0.hasPrefix("mount: on the deny list") }, "\(result.warnings)")
        #expect(result.proposal.contains("WARNING"))
        let proposed = try PolicyLoader.parse(result.proposal, name: "p", file: "p.toml", directory: Self.policies).policy
        #expect(!proposed.seccomp.allow.contains("ptrace") && !proposed.seccomp.allow.contains("mount"))
        #expect(result.learned.syscalls["ptrace"] == nil && result.learned.syscalls["mount"] == nil)
        // While learning the workload saw an error and went on; under the proposal, as under
        // python itself, ptrace kills it, so the proposal honestly says it is not verified.
        #expect(!result.verified)
        #expect(result.verification.seccompSyscall == "ptrace")
        let rerun = try await Self.runProposal(result, files: files)
        #expect(rerun.outcome == .seccompViolation && rerun.seccompSyscall == "ptrace")
    }

    /// A learning run is a normal jail but for its filter: the isolation probes see the same
    /// namespaces, identity, capabilities, filesystem and network with learning on and off, and
    /// the limits still end it.
    @Test func aLearningRunKeepsEveryOtherIsolation() async throws {
        let script = """
            n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
            [ "$(cat /proc/1/comm)" = sh ] && [ $n -lt 20 ] && echo own-pid-namespace
            grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
            echo uid $(id -u) gid $(id -g) host $(hostname)
            cat /etc/shadow >/dev/null 2>&1 && echo shadow-readable || echo shadow-hidden
            (echo x > /usr/x) 2>/dev/null && echo usr-writable || echo usr-read-only
            (echo x > /work/x) && echo work-writable
            echo links $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')
            """
        let policy = TestSupport.policy(["/bin/sh", "-c", script])
        let plain = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        var request = JailRequest(policy: policy)
        let learner = SyscallLearner()
        request.learner = learner
        let learning = try await TestSupport.supervisor().run(request)
        #expect(plain.outcome == .exited && plain.exitCode == 0, "\(plain.stderrText)")
        #expect(learning.outcome == .exited && learning.exitCode == 0, "\(learning.stderrText)")
        #expect(learning.stdoutText == plain.stdoutText)
        #expect(learning.stdoutText.contains("own-pid-namespace"))
        #expect(learning.stdoutText.contains("CapEff:\t0000000000000000"))
        #expect(learning.stdoutText.contains("NoNewPrivs:\t1"))
        #expect(learning.stdoutText.contains("Seccomp:\t2"))
        #expect(learning.stdoutText.contains("uid 65534 gid 65534"))
        #expect(learning.stdoutText.contains("shadow-hidden") && learning.stdoutText.contains("usr-read-only"))
        #expect(learning.stdoutText.contains("links lo\n"))
        #expect(!learner.learned.syscalls.isEmpty)
        #expect(learner.learned.files["/work/x"]?.write ?? 0 > 0, "\(learner.learned.files.keys.sorted())")

        var slow = JailRequest(policy: TestSupport.policy(["/bin/sleep", "5"]) { $0.limits.wallTimeS = 0.5 })
        slow.learner = SyscallLearner()
        let timedOut = try await TestSupport.supervisor().run(slow)
        #expect(timedOut.outcome == .wallTimeout)
    }

    /// Socket families, ioctls and destinations are recorded with their arguments; a family the
    /// policy does not list is refused and named.
    @Test func argumentClassesAndDestinationsAreRecorded() async throws {
        let from = try Self.load("python")
        let program = Array("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.sendto(b"x", ("192.0.2.7", 5353))
            except OSError as e:
                print("sendto", e.errno)
            try:
                socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            except OSError as e:
                print("netlink", e.errno)
            """.utf8)
        let files = [TaskFile(path: "main.py", contents: program)]
        let result = try await Self.learn(LearningRequest(from: from, policyDirectory: Self.policies, files: files))
        #expect(result.learned.socketFamilies["inet"] != nil)
        #expect(result.learned.destinations["inet 192.0.2.7:5353"] != nil, "\(result.learned.destinations)")
        #expect(result.learned.refused["socket(netlink)"] != nil, "\(result.learned.refused)")
        #expect(result.removed.socketFamilies.sorted() == ["inet6", "unix"])
        #expect(result.proposal.contains("inet 192.0.2.7:5353"))
    }
}
