import EdgyTestSupport
import Foundation
import Testing

/// `edgy submit|get|wait|logs|cancel|ls|delete` against a real edgyd, as a shell user runs them.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct ClientCommandTests {
    /// Runs `edgy ARGS` with EDGY_URL and EDGY_TOKEN set for `daemon`, its stdout and stderr piped.
    static func edgy(_ daemon: DaemonProcess, _ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["EDGY_URL"] = "http://127.0.0.1:\(daemon.port)"
        environment["EDGY_TOKEN"] = daemon.token
        let run = try await BoundedProcess.run(
            TestSupport.productsDirectory + "/edgy", arguments, environment: environment, timeout: .seconds(120))
        return (run.termination.status, run.stdout, run.stderr)
    }

    @Test func submitADirectoryWaitAndGetTheTasksExitCode() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let directory = NSTemporaryDirectory() + "edgy-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
        try "alpha\n".write(toFile: directory + "/a.txt", atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho beta\n".write(toFile: directory + "/sub/b.sh", atomically: true, encoding: .utf8)
        chmod(directory + "/sub/b.sh", 0o755)

        let waited = try await Self.edgy(daemon, [
            "submit", "--policy", "default", "--dir", directory, "--wait", "--", "/bin/sh", "-c", "cat a.txt; ./sub/b.sh; echo oops >&2; exit 7",
        ])
        #expect(waited.status == 7, "\(waited)")
        #expect(waited.stdout == "alpha\nbeta\n")
        // Piped: the output and nothing else, no progress line.
        #expect(waited.stderr == "oops\n")

        // Submit, then wait, logs, get, ls and delete by id.
        let submitted = try await Self.edgy(daemon, ["submit", "--policy", "default", "--", "/bin/sh", "-c", "sleep 0.3; echo later"])
        #expect(submitted.status == 0, "\(submitted)")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: id) != nil, "\(submitted)")
        #expect(try await Self.edgy(daemon, ["wait", id]).status == 0)
        #expect(try await Self.edgy(daemon, ["logs", id]).stdout == "later\n")
        let shown = try await Self.edgy(daemon, ["get", id, "--json"])
        let task = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
        #expect(task?["status"] as? String == "succeeded")
        #expect(try await Self.edgy(daemon, ["ls"]).stdout.contains(id))
        #expect(try await Self.edgy(daemon, ["delete", id]).status == 0)
        let gone = try await Self.edgy(daemon, ["get", id])
        #expect(gone.status == 125)
        #expect(gone.stderr.contains("404 task_not_found"), "\(gone)")
    }

    @Test func followingLogsAndCancellingAndRefusals() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let submitted = try await Self.edgy(daemon, ["submit", "--policy", "default", "--", "/bin/sh", "-c", "echo started; sleep 1000"])
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        async let followed = Self.edgy(daemon, ["logs", "-f", id])
        // Cancel once it runs; the follower ends with the task.
        for _ in 0..<200 {
            let shown = try await Self.edgy(daemon, ["get", id, "--json"])
            if shown.stdout.contains(#""status":"running""#) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.edgy(daemon, ["cancel", id]).status == 0)
        #expect(try await followed.stdout == "started\n")
        #expect(try await Self.edgy(daemon, ["wait", id]).status == 130)

        // The server's refusal, one line with its field; a bad token; no token.
        let refused = try await Self.edgy(daemon, ["submit", "--policy", "nope", "--", "/bin/true"])
        #expect(refused.status == 125)
        #expect(refused.stderr.contains("404 policy_not_found"), "\(refused)")
        #expect(refused.stderr.contains("(policy)"), "\(refused)")
        let badToken = try await Self.edgy(daemon, ["ls", "--token", "edgy_wrong"])
        // Steps from a file: the summary counts the cases, and a failed case fails the task (1).
        let steps = NSTemporaryDirectory() + "edgy-steps-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: steps) }
        try #"[{"name": "run", "command": ["/bin/cat"], "cases": [{"stdin": "a", "expected_stdout": "a"}, {"stdin": "b", "expected_stdout": "c"}]}]"#
            .write(toFile: steps, atomically: true, encoding: .utf8)
        let graded = try await Self.edgy(daemon, ["submit", "--policy", "default", "--steps", steps, "--wait", "--json"])
        #expect(graded.status == 1, "\(graded)")
        let gradedTask = try #require(try JSONSerialization.jsonObject(with: Data(graded.stdout.utf8)) as? [String: Any], "\(graded)")
        let gradedID = try #require(gradedTask["id"] as? String)
        #expect(try await Self.edgy(daemon, ["get", gradedID]).stdout.contains("cases 1/2"))
        #expect(badToken.status == 125 && badToken.stderr.contains("401"), "\(badToken)")
    }
}
