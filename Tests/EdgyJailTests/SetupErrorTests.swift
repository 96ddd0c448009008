import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Testing

/// A jail that cannot be built says which step failed and why, and runs nothing.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(1)))
struct SetupErrorTests {
    @Test func missingRequiredMountNamesTheMount() async throws {
        let report = try await TestSupport.sh("echo ran") { policy in
            policy.mounts.append(Policy.Mount(source: "/nonexistent/edgy-test"))
        }
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "filesystem")
        #expect(report.setup?.description == "mount /nonexistent/edgy-test: ENOENT")
        #expect(report.stdout.isEmpty)
    }

    @Test func missingOptionalMountIsSkipped() async throws {
        let report = try await TestSupport.sh("echo ran") { policy in
            policy.mounts.append(Policy.Mount(source: "/nonexistent/edgy-test", required: false))
        }
        #expect(report.outcome == .exited)
        #expect(report.stdoutText == "ran\n")
    }

    @Test func missingCommandNamesExecve() async throws {
        let policy = TestSupport.policy(["/usr/bin/no-such-program", "arg"])
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "execve")
        #expect(report.setup?.description == "execve /usr/bin/no-such-program: ENOENT")
    }

    @Test func commandIsSearchedInThePolicysPath() async throws {
        let policy = TestSupport.policy(["echo", "found"])
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy))
        #expect(report.stdoutText == "found\n")
        let missing = try await TestSupport.supervisor().run(JailRequest(policy: TestSupport.policy(["no-such-program"])))
        #expect(missing.setup?.description == "execve no-such-program: ENOENT")
    }

    @Test func noCommandAtAllIsAPlanError() async throws {
        let report = try await TestSupport.supervisor().run(JailRequest(policy: TestSupport.policy([])))
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "plan")
    }

    @Test(arguments: ["../escape", "/abs", "a/../../b", ""])
    func unsafeFilePathsAreRefused(path: String) async throws {
        let report = try await TestSupport.sh("true", files: [TaskFile(path: path, contents: [1])])
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "plan")
    }

    /// argv comes from the policy's run section (`{entry}` replaced), or the request's command.
    @Test func theCommandIsThePolicysArgvWithItsEntry() async throws {
        let policy = TestSupport.policy(["/bin/sh", "{entry}", "arg"]) { $0.run.entry = "main.sh" }
        let script = TaskFile(path: "main.sh", contents: Array("echo \"$0 $1\"".utf8))
        let report = try await TestSupport.supervisor().run(JailRequest(policy: policy, files: [script]))
        #expect(report.stdoutText == "main.sh arg\n", "\(report)")
        let overridden = try await TestSupport.supervisor().run(
            JailRequest(policy: policy, files: [script], command: ["echo", "{entry}"]))
        #expect(overridden.stdoutText == "main.sh\n", "\(overridden)")
    }
}
