import EdgyTestSupport
import Foundation
import Testing

/// `edgy policy learn`, the built binary, real jails: the file it writes is a policy an operator
/// can drop next to `base` and run the workload with.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct PolicyLearnCommandTests {
    @Test func theProposalItWritesRunsTheWorkload() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-learn-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies/base.toml", toPath: directory + "/base.toml")

        let learned = try RunCommandTests.edgy([
            "policy", "learn", "--from", "python", "--runs", "2", "--file", "main.py=sample/python.py", "--name", "hello",
            "--output", directory + "/hello.toml",
        ])
        #expect(learned.status == 0, "\(learned.stderr)")
        #expect(learned.stderr.contains("edgy: learned `hello` from 2 runs"), "\(learned.stderr)")
        #expect(learned.stderr.contains("verified (exited 0)"), "\(learned.stderr)")
        let text = try String(contentsOfFile: directory + "/hello.toml", encoding: .utf8)
        #expect(text.contains("# Verified: the workload ran again under this policy and exited 0."))
        #expect(text.contains("\"openat\","))

        let checked = try RunCommandTests.edgy(["policy", "check", directory + "/hello.toml"])
        #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)")
        let ran = try RunCommandTests.edgy(["run", "--policy", directory + "/hello.toml", "--file", "main.py=sample/python.py"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout == "hello from python\n")
        // A program that needs what the sample did not is killed, and the report names the call.
        let other = try RunCommandTests.edgy(["run", "--json", "--policy", directory + "/hello.toml", "--", "/usr/bin/python3", "-c", "import os; os.getsid(0)"])
        #expect(other.stdout.contains("\"outcome\" : \"seccomp_violation\""), "\(other.stdout)")
        #expect(other.stdout.contains("\"seccomp_syscall\" : \"getsid\""), "\(other.stdout)")
    }

    @Test func aWorkloadThatFailsUnderItsPolicyIsAnErrorNamingHowItEnded() throws {
        let failed = try RunCommandTests.edgy(["policy", "learn", "--from", "default", "--", "/bin/sh", "-c", "echo oops >&2; exit 4"])
        #expect(failed.status == 125)
        #expect(failed.stdout.isEmpty)
        #expect(failed.stderr.contains("learning run 1 of 1 did not succeed under `default`: exited 4"), "\(failed.stderr)")
        #expect(failed.stderr.contains("oops"))

        let badRuns = try RunCommandTests.edgy(["policy", "learn", "--from", "default", "--runs", "0", "--", "/bin/true"])
        #expect(badRuns.status != 0 && badRuns.stderr.contains("--runs must be between 1 and 10"), "\(badRuns.stderr)")
        let unknown = try RunCommandTests.edgy(["policy", "learn", "--from", "nosuch", "--", "/bin/true"])
        #expect(unknown.status == 125 && unknown.stderr.contains("nosuch"), "\(unknown.stderr)")
    }

    @Test func jsonHasTheWholeResult() throws {
        let result = try RunCommandTests.edgy(["policy", "learn", "--json", "--from", "sh", "--file", "main.sh=sample/sh.sh"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["verified"] as? Bool == true)
        #expect((object["proposal"] as? String)?.contains("extends = \"base\"") == true)
        let learned = try #require(object["learned"] as? [String: Any])
        let files = try #require(learned["files"] as? [String: Any])
        #expect(files["/work/main.sh"] != nil, "\(files.keys.sorted())")
        #expect((object["removed"] as? [String: Any])?["syscalls"] as? [String] != nil)
    }
}
