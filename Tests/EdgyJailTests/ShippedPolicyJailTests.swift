import EdgyJail
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Testing

/// Every shipped policy, loaded from `policies/` as an operator would, runs its sample program
/// from `sample/` in a real jail with the real cgroup manager: the policy is only useful if its
/// interpreter or compiler actually works under its own mounts, limits and seccomp filter.
@Suite(.timeLimit(.minutes(3)))
struct ShippedPolicyJailTests {
    static let policies = TestSupport.repositoryRoot + "/policies"
    static let samples = TestSupport.repositoryRoot + "/sample"

    /// (policy, sample file, the line the sample prints).
    static let cases: [(String, String, String)] = [
        ("default", "default.sh", "hello from default"),
        ("sh", "sh.sh", "hello from sh"),
        ("python", "python.py", "hello from python"),
        ("node", "node.js", "hello from node"),
        ("c", "c.c", "hello from c"),
        // The prototype's task, unchanged.
        ("node", "task.js", "3"),
    ]

    static func run(policy name: String, sample: String) async throws -> AttemptReport {
        let loaded = try PolicyLoader.load(name: name, directory: policies)
        let entry = try #require(loaded.policy.run.entry, "policy \(name) has no entry file")
        let contents = try IsolationTests.readFile(samples + "/" + sample)
        let request = JailRequest(
            policy: loaded.policy, policyDigest: loaded.digest,
            files: [JailFile(path: entry, contents: Array(contents.utf8))])
        return try await TestSupport.supervisor().run(request)
    }

    @Test(arguments: cases)
    func sampleRunsUnderItsPolicy(policy: String, sample: String, expected: String) async throws {
        let report = try await Self.run(policy: policy, sample: sample)
        let details = "\(policy)/\(sample): \(report.outcome) code=\(report.exitCode.map(String.init) ?? "-") "
            + "signal=\(report.signalName ?? "-") syscall=\(report.seccompSyscall ?? "-") setup=\(report.setup?.description ?? "-") "
            + "stdout=\(report.stdoutText) stderr=\(report.stderrText)"
        #expect(report.outcome == .exited, "\(details)")
        #expect(report.exitCode == 0, "\(details)")
        #expect(report.stdoutText.split(separator: "\n").map(String.init).contains(expected), "\(details)")
        #expect(report.policyName == policy)
    }

    @Test func everyShippedPolicyExceptBaseHasASample() throws {
        guard let dir = opendir(Self.policies) else { throw IsolationTests.Errno() }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if file.hasSuffix(".toml") { names.append(String(file.dropLast(5))) }
        }
        let covered = Set(Self.cases.map(\.0))
        #expect(Set(names).subtracting(["base"]) == covered, "shipped: \(names.sorted())")
    }
}
