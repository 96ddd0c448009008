import EdgyTestSupport
import Foundation
import Testing

/// `POST /v1/policies/learn` on a real edgyd: admin only, a task body in, the proposal and its
/// verification out, and every refusal a JSON error naming what was wrong.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct LearnDaemonTests {
    @Test func anAdminLearnsAPolicyFromATaskBody() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }

        let (status, body) = try await daemon.request("POST", "/v1/policies/learn?runs=2&name=answer", json: ["policy": "python", "input": "print(6*7)"])
        let result = try #require(body as? [String: Any], "\(String(describing: body))")
        #expect(status == 200, "\(result)")
        #expect(result["verified"] as? Bool == true, "\(result["verification"] ?? "")")
        #expect(result["name"] as? String == "answer")
        #expect(result["from"] as? String == "python")
        let proposal = try #require(result["proposal"] as? String)
        #expect(proposal.contains("extends = \"base\""))
        #expect(proposal.contains("from 2 runs"))
        let learned = try #require(result["learned"] as? [String: Any])
        #expect(learned["runs"] as? Int == 2)
        #expect((learned["syscalls"] as? [String: Any])?["openat"] != nil)
        #expect((result["runs"] as? [Any])?.count == 2)

        // A submitter may not learn.
        let created = try AccessDaemonTests.edgy(
            ["token", "create", "--server", "http://127.0.0.1:\(daemon.port)", "--name", "ci", "--role", "submitter", "--tenant", "default", "--json"], token: daemon.token)
        let submitter = try #require(AccessDaemonTests.object(created.stdout)["token"] as? String, "\(created.stderr)")
        let (forbidden, refusal) = try await AccessDaemonTests.request(daemon, "POST", "/v1/policies/learn", token: submitter, json: ["policy": "python", "input": "print(1)"])
        #expect(forbidden == 403, "\(refusal)")
    }

    /// An edgyd under a filter that holds the seccomp listener (its jails come from the fork
    /// server) learns by tracing: the same proposal as an edgyd that can have a listener.
    @Test func anEdgydThatCannotHaveAListenerLearnsByTracing() async throws {
        let body: [String: Any] = ["policy": "python", "input": "import os\nprint(sorted(os.listdir('/')))\nos.system('true')"]
        let traced = try DaemonProcess(launcher: TestSupport.underASeccompListener)
        defer { traced.stop() }
        let plain = try DaemonProcess()
        defer { plain.stop() }
        let (status, tracedBody) = try await traced.request("POST", "/v1/policies/learn", json: body)
        let tracedResult = try #require(tracedBody as? [String: Any], "\(String(describing: tracedBody))")
        #expect(status == 200, "\(tracedResult)")
        #expect(tracedResult["verified"] as? Bool == true, "\(tracedResult["verification"] ?? "")")
        #expect((tracedResult["learned"] as? [String: Any])?["traced_runs"] as? Int == 1, "\(tracedResult["learned"] ?? "")")
        let (_, plainBody) = try await plain.request("POST", "/v1/policies/learn", json: body)
        let plainResult = try #require(plainBody as? [String: Any])
        #expect((plainResult["learned"] as? [String: Any])?["traced_runs"] as? Int == 0)
        func policy(_ result: [String: Any]) -> [String] {
            ((result["proposal"] as? String) ?? "").split(separator: "\n").map { String($0.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]) }
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        }
        #expect(policy(tracedResult) == policy(plainResult))
        #expect(!policy(tracedResult).isEmpty)
    }

    @Test func refusalsNameTheirProblem() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        func error(_ path: String, _ json: Any) async throws -> (Int, [String: Any]) {
            let (status, body) = try await daemon.request("POST", path, json: json)
            return (status, ((body as? [String: Any])?["error"] as? [String: Any]) ?? [:])
        }

        var (status, problem) = try await error("/v1/policies/learn?runs=0", ["policy": "python", "input": "print(1)"])
        #expect(status == 400 && problem["field"] as? String == "runs", "\(problem)")
        (status, problem) = try await error("/v1/policies/learn?runs=11", ["policy": "python", "input": "print(1)"])
        #expect(status == 400 && problem["field"] as? String == "runs", "\(problem)")
        (status, problem) = try await error("/v1/policies/learn?name=../x", ["policy": "python", "input": "print(1)"])
        #expect(status == 400 && problem["field"] as? String == "name", "\(problem)")
        (status, problem) = try await error("/v1/policies/learn", ["policy": "nosuch", "input": "print(1)"])
        #expect(status == 404 && problem["field"] as? String == "policy", "\(problem)")
        (status, problem) = try await error("/v1/policies/learn", ["policy": "python", "input": "import sys; print('bad', file=sys.stderr); sys.exit(3)"])
        #expect(status == 422 && problem["code"] as? String == "learning_failed", "\(problem)")
        #expect((problem["message"] as? String)?.contains("exited 3") == true, "\(problem)")
        (status, problem) = try await error("/v1/policies/learn", [
            "policy": "python", "input": "print(1)", "steps": [["name": "run", "cases": [["stdin": "", "expected_stdout": "1\n"]]]],
        ])
        #expect(status == 422 && problem["field"] as? String == "steps", "\(problem)")
        (status, problem) = try await error("/v1/policies/learn", ["policy": "python", "input": "print(1)", "bogus": 1])
        #expect(status == 400, "\(problem)")
    }
}
