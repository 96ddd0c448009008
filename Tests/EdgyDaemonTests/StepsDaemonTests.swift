import EdgyModel
import EdgyTestSupport
import Foundation
import Testing

/// Multi-step tasks through a real `edgyd`: the shipped examples as the README submits them,
/// progress over SSE, requests refused naming the field, and a cancel in the middle of the cases.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct StepsDaemonTests {
    static func json(_ object: Any?) -> [String: Any] { object as? [String: Any] ?? [:] }

    static func post(_ daemon: DaemonProcess, file: String) throws -> [String: Any] {
        let out = try daemon.shell(
            #"curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" --data @"# + file + #" "$EDGY/v1/tasks?wait=60""#)
        return json(try JSONSerialization.jsonObject(with: Data(out.utf8)))
    }

    @Test(arguments: ["c", "python", "node"])
    func theShippedExamplesPassEveryCase(language: String) async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let task = try Self.post(daemon, file: "sample/steps/\(language).json")
        #expect(task["status"] as? String == "succeeded", "\(task) \(daemon.log().suffix(2000))")
        let result = Self.json(task["result"])
        let cases = Self.json(result["cases"])
        #expect(cases["total"] as? Int == 3)
        #expect(cases["passed"] as? Int == 3)
        let steps = result["steps"] as? [[String: Any]] ?? []
        #expect(steps.allSatisfy { $0["status"] as? String == "succeeded" })
        let verdicts = (steps.last?["cases"] as? [[String: Any]] ?? []).map { $0["verdict"] as? String }
        #expect(verdicts == ["accepted", "accepted", "accepted"])
    }

    @Test func progressArrivesOverServerSentEvents() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let (_, created) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "c", "files": [["path": "main.c", "content": ""]],
            "steps": [
                ["name": "hello", "command": ["/bin/sh", "-c", "echo hi > greeting"]],
                ["name": "check", "command": ["/bin/cat", "greeting"], "cases": [["expected_stdout": "hi\n"], ["expected_stdout": "no"]]],
            ],
        ])
        let id = try #require(Self.json(created)["id"] as? String, "\(String(describing: created))")
        let stream = try daemon.shell(#"curl -s -N --max-time 60 -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/"# + id + "/events")
        let kinds = stream.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        let progress = kinds.filter { $0 == "step" || $0 == "case" }
        #expect(progress == ["step", "step", "step", "case", "case", "step"], "\(stream)")
        #expect(stream.contains(#""verdict":"wrong_answer""#))
        #expect(kinds.last == "status")
        let (_, body) = try await daemon.request("GET", "/v1/tasks/\(id)")
        let task = Self.json(body)
        #expect(task["status"] as? String == "failed")
        let summary = Self.json(Self.json(task["result"])["cases"])
        #expect(Self.json(summary["first_failure"])["index"] as? Int == 1)
    }

    /// A body's `steps` (and other fields) as JSON text, and the field its 400 must name.
    static let badSteps: [(String, String)] = [
        (#""steps": [{"name": "a"}, {"name": "b"}, {"name": "c", "command": [""]}]"#, "steps[2].command[0]"),
        (#""steps": [{"name": "a", "cases": [{"stdin": "x"}]}]"#, "steps[0].cases[0].expected_stdout"),
        (#""steps": [{"name": "a", "cases": [{"expected_stdout": "(", "comparator": "regex"}]}]"#, "steps[0].cases[0].expected_stdout"),
        (#""steps": [{"name": "a", "cases": [{"expected_stdout": "1", "comparator": "float", "tolerance": 5}]}]"#, "steps[0].cases[0].tolerance"),
        (#""steps": [{"name": "a", "cases": [{"expected_stdout": "1", "comparator": "fuzzy"}]}]"#, "steps[0].cases[0].comparator"),
        (#""steps": [{"name": "a"}, {"name": "a"}]"#, "steps[1].name"),
        (#""steps": [{"name": "a", "limits": {"memory_mib": 0}}]"#, "steps[0].limits.memory_mib"),
        (#""steps": [{"name": "a", "colour": "red"}]"#, "steps[0].colour"),
        (#""steps": []"#, "steps"),
        (#""steps": [{"name": "a"}], "command": ["/bin/true"]"#, "command"),
        (#""steps": [{"name": "a"}, {"name": "d", "type": "dependencies"}]"#, "steps[1].type"),
        (#""steps": [{"name": "a", "stop_on_first_failure": true}]"#, "steps[0]"),
        (#""steps": [{"name": "a", "stdin": null}]"#, "steps[0].stdin"),
        (#""steps": [{"name": "a", "tolerance": -1, "cases": [{"expected_stdout": "1", "tolerance": 0.5, "comparator": "float"}]}]"#, "steps[0].tolerance"),
        ("\"steps\": [" + (0..<17).map { #"{"name": "s\#($0)"}"# }.joined(separator: ", ") + "]", "steps"),
    ]

    @Test func badStepsAre400NamingTheField() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        for (steps, field) in Self.badSteps {
            let body = #"{"policy": "c", "input": "int main(void) { return 0; }", "# + steps + "}"
            let (status, reply) = try await daemon.request("POST", "/v1/tasks", body: Data(body.utf8), contentType: "application/json")
            #expect(status == 400, "\(steps): \(String(describing: reply))")
            #expect(Self.json(Self.json(reply)["error"])["field"] as? String == field, "\(steps): \(String(describing: reply))")
        }
    }

    @Test func aStepsLimitsMayNotLoosenThePolicy() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let (status, reply) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "c", "input": "", "steps": [["name": "a", "limits": ["memory_mib": 100_000]]],
        ])
        #expect(status == 422)
        #expect(Self.json(Self.json(reply)["error"])["field"] as? String == "steps[0].limits.memory_mib")
    }

    @Test func cancellingInTheMiddleOfTheCasesKillsTheRunningCaseAndLeavesNoJail() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let cases = (0..<20).map { _ in ["stdin": "", "expected_stdout": ""] }
        let (_, created) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "c", "input": "", "steps": [["name": "slow", "command": ["/bin/sleep", "2"], "cases": cases]],
        ])
        let id = try #require(Self.json(created)["id"] as? String, "\(String(describing: created))")
        // Wait for the first case to end, and the second to start. (The event stream lasts as long
        // as the task: read what it has after half a second.)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let events = try daemon.shell(#"curl -s -N --max-time 0.5 -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/"# + id + "/events || true")
            if events.contains("event: case") { break }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(Self.workloads(daemon).count == 1, "one case should be running")
        let asked = Date()
        let (status, _) = try await daemon.request("POST", "/v1/tasks/\(id)/cancel")
        #expect(status == 200 || status == 202)
        let task = try await DaemonTests.finished(daemon, id, timeout: 20)
        #expect(task["status"] as? String == "cancelled")
        #expect(Date().timeIntervalSince(asked) < 1.5)
        let cancelled = Self.json(task["result"])
        let summary = Self.json(cancelled["cases"])
        #expect((summary["run"] as? Int ?? 0) >= 1 && (summary["run"] as? Int ?? 99) < 20, "\(summary)")
        #expect(Self.workloads(daemon).isEmpty)
    }

    /// The daemon's jail processes that run a workload: not those parked in its pool, which have
    /// not executed anything yet (they are still edgyd or its fork server).
    static func workloads(_ daemon: DaemonProcess) -> [String] {
        DaemonTests.jailProcesses(cgroupParent: daemon.cgroupParent).filter { pid in
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
            return !exe.hasSuffix("/edgyd") && !exe.hasSuffix("/edgy-forkserver")
        }
    }
}
