import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySeccomp
import EdgyTestSupport
import Glibc
import Testing

/// `edgy policy explain` must tell the truth: for each (policy, syscall) below, what
/// `SeccompExplainer` says is compared with what the probe observes in a real jail built from
/// the same policy. The table also pins the verdict, so the two cannot agree by both drifting.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct ExplainAgreementTests {
    /// Custom policies written as an operator would, extending the shipped `base`.
    static let customPolicies: [String: String] = [
        // `deny` takes one syscall back out of `@default`.
        "no-getpid": """
            extends = "base"
            [seccomp]
            deny = ["ptrace", "bpf", "mount", "getpid"]
            """,
        // Denied calls fail with EPERM instead of killing the process.
        "errno-eperm": """
            extends = "base"
            [seccomp]
            default_action = "errno:EPERM"
            deny = ["ptrace", "bpf", "mount", "getpid"]
            """,
    ]

    static func load(_ name: String) throws -> LoadedPolicy {
        let directory = TestSupport.repositoryRoot + "/policies"
        if let text = customPolicies[name] {
            return try PolicyLoader.parse(text, name: name, file: "\(name).toml", directory: directory)
        }
        return try PolicyLoader.load(name: name, directory: directory)
    }

    /// What the probe saw.
    enum Observed: Equatable, CustomStringConvertible {
        /// The call got past seccomp to the kernel ("ok" or "reached errno=…", exit 0).
        case reached
        /// The call failed with this errno (from the filter or from the kernel's own checks).
        case refused(String)
        /// The filter killed the process.
        case killed(syscall: String?)
        case other(String)

        var description: String {
            switch self {
            case .reached: "reached"
            case .refused(let e): "refused \(e)"
            case .killed(let s): "killed (\(s ?? "?"))"
            case .other(let s): "other: \(s)"
            }
        }
    }

    static func observe(policy: LoadedPolicy, probe arguments: [String]) async throws -> Observed {
        var jailed = TestSupport.withProbe(policy.policy)
        jailed.limits.wallTimeS = 10
        let report = try await TestSupport.supervisor().run(
            JailRequest(policy: jailed, policyDigest: policy.digest, command: [TestSupport.probe] + arguments))
        switch (report.outcome, report.exitCode) {
        case (.seccompViolation, _):
            return .killed(syscall: report.seccompSyscall)
        case (.exited, 0):
            return .reached
        case (.exited, 1) where report.stdoutText.hasPrefix("denied errno="):
            let name = report.stdoutText.dropFirst("denied errno=".count).prefix { $0 != "\n" && $0 != " " }
            return .refused(String(name))
        default:
            return .other("\(report.outcome) \(report.exitCode.map(String.init) ?? "-") \(report.stdoutText) \(report.stderrText) \(report.setup?.description ?? "")")
        }
    }

    /// Killed by seccomp for `syscall`, named in the report.
    static func killed(_ observed: Observed, by syscall: String) -> Bool {
        observed == .killed(syscall: syscall)
    }

    /// The expected verdict in words: "allowed", "kill", "errno:EPERM", "conditional".
    static func verdictName(_ verdict: SeccompExplanation.Verdict) -> String {
        switch verdict {
        case .allowed: "allowed"
        case .denied(.killProcess): "kill"
        case .denied(let action): "\(action)"
        case .conditional: "conditional"
        case .unknown: "unknown"
        }
    }

    @Test(arguments: [
        ("default", "getpid", "allowed"),
        ("default", "ptrace", "kill"),
        ("default", "bpf", "kill"),
        ("default", "mount", "kill"),
        ("default", "kcmp", "kill"),
        ("no-getpid", "getpid", "kill"),
        ("no-getpid", "ptrace", "kill"),
        ("errno-eperm", "getpid", "errno:EPERM"),
        ("errno-eperm", "ptrace", "errno:EPERM"),
        ("errno-eperm", "bpf", "errno:EPERM"),
        ("errno-eperm", "mount", "errno:EPERM"),
    ])
    func explainerAgreesWithTheJail(policy name: String, syscall: String, verdict expected: String) async throws {
        let policy = try Self.load(name)
        let explanation = SeccompExplainer.explain(syscall, in: policy.policy.seccomp)
        #expect(Self.verdictName(explanation.verdict) == expected, "\(name): \(explanation)")

        let observed = try await Self.observe(policy: policy, probe: ["syscall", syscall])
        switch explanation.verdict {
        case .allowed:
            #expect(observed == .reached, "\(name) \(syscall): explain says \(explanation), jail: \(observed)")
        case .denied(.killProcess):
            #expect(Self.killed(observed, by: syscall), "\(name) \(syscall): explain says \(explanation), jail: \(observed)")
        case .denied(.errno(_, let errnoName)):
            #expect(observed == .refused(errnoName), "\(name) \(syscall): explain says \(explanation), jail: \(observed)")
        default:
            Issue.record("\(name) \(syscall): unexpected verdict \(explanation)")
        }
    }

    /// `socket` is conditional on the address family: the families the explanation names are
    /// reachable, and the others take the default action.
    @Test(arguments: ["default", "errno-eperm"])
    func socketIsConditionalOnTheFamily(policy name: String) async throws {
        let policy = try Self.load(name)
        let explanation = SeccompExplainer.explain("socket", in: policy.policy.seccomp)
        #expect(explanation.verdict == .conditional, "\(explanation)")
        let allowedFamilies = policy.policy.seccomp.socketFamilies
        #expect(allowedFamilies.sorted() == ["inet", "inet6", "unix"])
        for family in allowedFamilies {
            #expect(explanation.reason.contains(family), "\(explanation)")
        }
        for family in ["unix", "inet", "inet6", "netlink", "packet"] {
            let observed = try await Self.observe(policy: policy, probe: ["socket", family])
            if allowedFamilies.contains(family) {
                #expect(observed == .reached, "\(name) socket \(family): \(observed)")
            } else if case .errno(_, let errnoName) = policy.policy.seccomp.defaultAction {
                #expect(observed == .refused(errnoName), "\(name) socket \(family): \(observed)")
            } else {
                #expect(Self.killed(observed, by: "socket"), "\(name) socket \(family): \(observed)")
            }
        }
    }

    /// A policy that takes `mount` out of `deny` and lists it in `allow` gets past the filter
    /// (the kernel then refuses it for lack of capabilities, not seccomp).
    @Test func explicitlyAllowedSyscallReachesTheKernel() async throws {
        let text = """
            extends = "base"
            [seccomp]
            allow = ["@default", "mount"]
            deny = ["ptrace"]
            """
        let policy = try PolicyLoader.parse(text, name: "with-mount", file: "with-mount.toml", directory: TestSupport.repositoryRoot + "/policies")
        let explanation = SeccompExplainer.explain("mount", in: policy.policy.seccomp)
        #expect(explanation.verdict == .allowed, "\(explanation)")
        let observed = try await Self.observe(policy: policy, probe: ["syscall", "mount"])
        // Reached the kernel: argument validation (EFAULT etc.) or the capability check (EPERM).
        #expect(observed == .reached || observed == .refused("EPERM"), "\(observed)")
        #expect(observed != .killed(syscall: "mount"))
    }
}
