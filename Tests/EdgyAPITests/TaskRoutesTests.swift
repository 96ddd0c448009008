import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import EdgyAPI

@Suite struct TaskRoutesTests {
    @Test func createReturnsTheTaskJSONAndStoresAValidSpec() async throws {
        let harness = try await Harness()
        let id = try await harness.test { client in
            let response = try await client.postJSON("/v1/tasks", #"""
                {"name":"hello","input":"echo $GREETING","files":[{"path":"data/in.txt","content":"aGk=","encoding":"base64","mode":"0600"}],
                 "stdin":"abc","env":{"GREETING":"hi"},"limits":{"memory_mib":128,"wall_time_s":2},"max_attempts":2}
                """#)
            #expect(response.status == .created)
            let json = try response.json
            for key in ["id", "name", "tenant", "policy", "status", "created_at", "updated_at", "finished_at", "attempts", "result", "exit_code", "outcome", "stdout", "stderr", "files", "max_attempts", "cancel_requested"] {
                #expect(json.keys.contains(key), "missing \(key)")
            }
            #expect(json["name"] as? String == "hello")
            #expect(json["tenant"] as? String == "acme")
            #expect(json["policy"] as? String == "default")
            #expect(json["status"] as? String == "queued")
            #expect(json["finished_at"] is NSNull)
            #expect(json["result"] is NSNull)
            #expect((json["attempts"] as? [Any])?.isEmpty == true)
            let id = try #require(json["id"] as? String)
            #expect(response.headers[.location] == "/v1/tasks/\(id)")
            return try #require(UUID(uuidString: id))
        }
        let task = try #require(try await harness.store.task(id: id))
        #expect(task.spec.files.map(\.path).sorted() == ["data/in.txt", "main.sh"])
        #expect(task.spec.files.first { $0.path == "data/in.txt" }?.contents == Array("hi".utf8))
        #expect(task.spec.files.first { $0.path == "data/in.txt" }?.mode == 0o600)
        #expect(task.spec.files.first { $0.path == "main.sh" }?.contents == Array("echo $GREETING".utf8))
        #expect(task.spec.stdin == Array("abc".utf8))
        #expect(task.spec.env == ["GREETING": "hi"])
        #expect(task.spec.limits.memoryMib == 128)
        #expect(task.spec.maxAttempts == 2)
    }

    struct BadRequest: Sendable, CustomStringConvertible {
        var body: String
        var status: HTTPResponse.Status
        var code: String
        var field: String?
        var contentType = "application/json"
        var description: String { "\(status.code) \(code) \(field ?? "")" }
    }

    static let badRequests: [BadRequest] = [
        .init(body: "{not json", status: .badRequest, code: "invalid_json"),
        .init(body: "[]", status: .badRequest, code: "invalid_json"),
        .init(body: #"{"inptu":"x"}"#, status: .badRequest, code: "invalid_field", field: "inptu"),
        .init(body: #"{"name":7}"#, status: .badRequest, code: "invalid_field", field: "name"),
        .init(body: #"{"name":""}"#, status: .badRequest, code: "invalid_field", field: "name"),
        .init(body: #"{"input":"x","limits":{"memory":5}}"#, status: .badRequest, code: "invalid_field", field: "limits.memory"),
        .init(body: #"{"input":"x","limits":{"memory_mib":"lots"}}"#, status: .badRequest, code: "invalid_field", field: "limits.memory_mib"),
        .init(body: #"{"input":"x","files":[{"path":"../etc/passwd","content":""}]}"#, status: .badRequest, code: "invalid_field", field: "files[0]"),
        .init(body: #"{"input":"x","files":[{"path":"/etc/passwd","content":""}]}"#, status: .badRequest, code: "invalid_field", field: "files[0]"),
        .init(body: #"{"input":"x","files":[{"path":"a","content":"!!!","encoding":"base64"}]}"#, status: .badRequest, code: "invalid_field", field: "files[0].content"),
        .init(body: #"{"input":"x","files":[{"path":"a","encoding":"rot13"}]}"#, status: .badRequest, code: "invalid_field", field: "files[0].encoding"),
        .init(body: #"{"input":"x","files":[{"path":"a","mode":"4755"}]}"#, status: .badRequest, code: "invalid_field", field: "files[0].mode"),
        .init(body: #"{"input":"x","files":[{"content":"a"}]}"#, status: .badRequest, code: "invalid_field", field: "files[0].path"),
        .init(body: #"{"input":"x","files":[{"path":"main.sh"}]}"#, status: .badRequest, code: "invalid_field", field: "input"),
        .init(body: #"{"input":"x","stdin":"a","stdin_base64":"YQ=="}"#, status: .badRequest, code: "invalid_field", field: "stdin_base64"),
        .init(body: #"{"input":"x","max_attempts":0}"#, status: .badRequest, code: "invalid_field", field: "max_attempts"),
        .init(body: #"{"input":"x","command":[]}"#, status: .badRequest, code: "invalid_field", field: "command"),
        .init(body: #"{"input":"x","policy":"nope"}"#, status: .notFound, code: "policy_not_found", field: "policy"),
        .init(body: #"{"input":"x","policy":"../etc"}"#, status: .notFound, code: "policy_not_found", field: "policy"),
        .init(body: #"{"policy":"raw","input":"x","command":["/bin/true"]}"#, status: .unprocessableContent, code: "input_not_allowed", field: "input"),
        .init(body: #"{"policy":"raw"}"#, status: .unprocessableContent, code: "command_required", field: "command"),
        .init(body: #"{"policy":"node"}"#, status: .unprocessableContent, code: "entry_missing", field: "input"),
        .init(body: #"{"policy":"node","input":"1","command":["/bin/sh"]}"#, status: .unprocessableContent, code: "command_override_not_allowed", field: "command"),
        .init(body: #"{"input":"x","env":{"LD_PRELOAD":"/x.so"}}"#, status: .unprocessableContent, code: "env_not_allowed", field: "env.LD_PRELOAD"),
        .init(body: #"{"input":"x","limits":{"memory_mib":100000}}"#, status: .unprocessableContent, code: "limit_not_allowed", field: "limits.memory_mib"),
        .init(body: #"{"input":"x","limits":{"wall_time_s":-1}}"#, status: .badRequest, code: "invalid_field", field: "limits.wall_time_s"),
        .init(body: #"{"input":"x","limits":{"memory_mib":1e30}}"#, status: .badRequest, code: "invalid_field", field: "limits.memory_mib"),
        .init(body: #"{"input":"x","max_attempts":1e30}"#, status: .badRequest, code: "invalid_field", field: "max_attempts"),
        .init(body: #"{"input":"x","files":[{"path":"a","mode":-1}]}"#, status: .badRequest, code: "invalid_field", field: "files[0].mode"),
        .init(body: #"{"input":"x","max_attempts":99}"#, status: .unprocessableContent, code: "max_attempts_not_allowed", field: "max_attempts"),
        .init(body: "input=x", status: .unsupportedMediaType, code: "unsupported_media_type", contentType: "application/x-www-form-urlencoded"),
        .init(body: "{}", status: .badRequest, code: "bad_request", contentType: "multipart/form-data"),
    ]

    @Test(arguments: badRequests)
    func invalidRequestsGetTheirStatusAndNothingIsStored(_ bad: BadRequest) async throws {
        let harness = try await Harness()
        try await harness.test { client in
            let response = try await client.execute(
                uri: "/v1/tasks", method: .post, headers: headers(Harness.submitter, contentType: bad.contentType), body: ByteBuffer(string: bad.body))
            #expect(response.status == bad.status, "\(response.text)")
            let error = try response.error
            #expect(error.code == bad.code)
            if let field = bad.field, !field.isEmpty { #expect(error.field == field) }
            #expect(!error.message.isEmpty)
        }
        #expect(try await harness.taskCount() == 0)
    }

    @Test func missingContentTypeIs415() async throws {
        try await Harness().test { client in
            let response = try await client.execute(uri: "/v1/tasks", method: .post, headers: headers(Harness.submitter), body: ByteBuffer(string: "{}"))
            #expect(response.status == .unsupportedMediaType)
        }
    }

    @Test func sizeCapsAre413() async throws {
        let harness = try await Harness(config: APIConfiguration(maxFilesPerTask: 3, maxTaskBytes: 1000))
        try await harness.test { client in
            let files = (0..<4).map { #"{"path":"f\#($0)","content":"x"}"# }.joined(separator: ",")
            let many = try await client.postJSON("/v1/tasks", #"{"input":"x","files":[\#(files)]}"#)
            #expect(many.status == .contentTooLarge)
            #expect(try many.error.field == "files")
            let big = try await client.postJSON("/v1/tasks", #"{"input":"\#(String(repeating: "x", count: 1001))"}"#)
            #expect(big.status == .contentTooLarge)
            // Beyond the request cap the body is not even read.
            let huge = try await client.postJSON("/v1/tasks", #"{"input":"\#(String(repeating: "x", count: 2 << 20))"}"#)
            #expect(huge.status == .contentTooLarge)
            #expect(try huge.error.code == "too_large")
        }
        #expect(try await harness.taskCount() == 0)
    }

    @Test func fullQueueIs429WithRetryAfter() async throws {
        let harness = try await Harness(config: APIConfiguration(maxQueued: 2, retryAfterSeconds: 7))
        try await harness.test { client in
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"1"}"#).status == .created)
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"2"}"#).status == .created)
            let full = try await client.postJSON("/v1/tasks", #"{"input":"3"}"#)
            #expect(full.status == .tooManyRequests)
            #expect(full.headers[.retryAfter] == "7")
            #expect(try full.error.code == "queue_full")
            let prototype = try await client.postJSON("/", #"{"name":"t","input":"1"}"#)
            #expect(prototype.status == .tooManyRequests)
        }
        #expect(try await harness.taskCount() == 2)
    }

    @Test func multipartWithSeveralFilesAndFields() async throws {
        let harness = try await Harness()
        var form = MultipartForm()
        form.file(filename: "a.txt", Array("alpha".utf8))
        form.file(filename: "b.bin", [0, 1, 2, 255])
        form.file("files", filename: "c.sh", type: "text/x-sh", Array("echo c".utf8))
        form.field("name", "multi")
        form.field("policy", "default")
        form.field("input", "cat a.txt")
        form.field("stdin", "in")
        form.field("env", "GREETING=hello=world")
        form.field("limits", #"{"pids": 10}"#)
        form.field("max_attempts", "1")
        let body = form.finished()
        let response = try await harness.test { client in try await client.multipart(body) }
        #expect(response.status == .created, "\(response.text)")
        let id = try response.taskID
        let task = try #require(try await harness.store.task(id: id))
        #expect(task.spec.name == "multi")
        #expect(task.spec.files.map(\.path).sorted() == ["a.txt", "b.bin", "c.sh", "main.sh"])
        #expect(task.spec.files.first { $0.path == "b.bin" }?.contents == [0, 1, 2, 255])
        #expect(task.spec.env == ["GREETING": "hello=world"])
        #expect(task.spec.limits.pids == 10)
        #expect(task.spec.stdin == Array("in".utf8))
        #expect(task.spec.maxAttempts == 1)
    }

    @Test func multipartCommandAndBadFields() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            var ok = MultipartForm()
            ok.file(filename: "run.sh", Array("echo".utf8))
            ok.field("command", #"["/bin/sh","run.sh"]"#)
            #expect(try await client.multipart(ok.finished()).status == .created)

            var bad = MultipartForm()
            bad.field("command", "/bin/sh run.sh")
            let response = try await client.multipart(bad.finished())
            #expect(response.status == .badRequest)
            #expect(try response.error.field == "command")

            var unknown = MultipartForm()
            unknown.field("inptu", "x")
            #expect(try await client.multipart(unknown.finished()).error.field == "inptu")

            var unterminated = MultipartForm()
            unterminated.field("input", "x")
            #expect(try await client.multipart(unterminated).status == .badRequest)

            var looser = MultipartForm()
            looser.field("input", "x")
            looser.field("limits", #"{"memory_mib": 99999}"#)
            let tooLoose = try await client.multipart(looser.finished())
            #expect(tooLoose.status == .unprocessableContent)
            #expect(try tooLoose.error.field == "limits.memory_mib")
        }
        #expect(try await harness.taskCount() == 1)
    }

    @Test func waitReturnsTheFinishedTask() async throws {
        let harness = try await Harness()
        async let worker = harness.runWorker(stdout: "3\n", delay: .milliseconds(100))
        let response = try await harness.test { client in try await client.postJSON("/v1/tasks?wait=10", #"{"input":"echo 3"}"#) }
        _ = try await worker
        #expect(response.status == .ok)
        let json = try response.json
        #expect(json["status"] as? String == "succeeded")
        #expect(json["stdout"] as? String == "3\n")
        #expect(json["exit_code"] as? Int == 0)
        #expect(json["outcome"] as? String == "exited")
        let attempts = try #require(json["attempts"] as? [[String: Any]])
        #expect(attempts.count == 1)
        #expect(attempts[0]["worker"] as? String == "w1")
        #expect((attempts[0]["report"] as? [String: Any])?["exit_code"] as? Int == 0)
        #expect((json["result"] as? [String: Any])?["stdout"] as? String == "3\n")
    }

    @Test func waitTimesOutWith202() async throws {
        let harness = try await Harness(config: APIConfiguration(pollInterval: .milliseconds(20)))
        let start = ContinuousClock.now
        let response = try await harness.test { client in try await client.postJSON("/v1/tasks?wait=0.3", #"{"input":"sleep"}"#) }
        #expect(response.status == .accepted)
        #expect(try response.json["status"] as? String == "queued")
        #expect(ContinuousClock.now - start >= .milliseconds(290))
        try await harness.test { client in
            let response = try await client.postJSON("/v1/tasks?wait=soon", #"{"input":"x"}"#)
            #expect(response.status == .badRequest)
        }
    }

    @Test func eventsStreamInOrderAndEndAtTheTerminalStatus() async throws {
        let harness = try await Harness()
        let id = try await harness.test { client in try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#).json["id"] as? String }
        let taskID = try #require(id)
        async let worker = harness.runWorker(stdout: "line 1\nline 2\n", stderr: "warn", delay: .milliseconds(150))
        let response = try await harness.test { client in try await client.get("/v1/tasks/\(taskID)/events") }
        _ = try await worker
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == "text/event-stream")
        let events = parseSSE(response.text)
        #expect(events.map(\.event) == ["status", "status", "stdout", "stderr", "status"])
        #expect(events.map(\.data) == ["queued", "running", "line 1\nline 2\n", "warn", "succeeded"])
        let ids = events.compactMap { Int($0.id) }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count)

        // Resume after the second event: the rest, then the stream ends at once.
        let resumed = try await harness.test { client in
            try await client.get("/v1/tasks/\(taskID)/events", extra: [HTTPField.Name("Last-Event-ID")!: events[1].id])
        }
        #expect(parseSSE(resumed.text).map(\.data) == ["line 1\nline 2\n", "warn", "succeeded"])
        let afterEnd = try await harness.test { client in
            try await client.get("/v1/tasks/\(taskID)/events", extra: [HTTPField.Name("Last-Event-ID")!: events[4].id])
        }
        #expect(parseSSE(afterEnd.text).isEmpty)
    }

    @Test func outputRoutesServeTheLastAttempt() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            let id = try #require(try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#).json["id"] as? String)
            #expect(try await client.get("/v1/tasks/\(id)/stdout").text == "")
            _ = try await harness.runWorker(stdout: "out\n", stderr: "err\n", outcome: .exited, exitCode: 1, disposition: .failed)
            let stdout = try await client.get("/v1/tasks/\(id)/stdout")
            #expect(stdout.status == .ok)
            #expect(stdout.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(stdout.text == "out\n")
            #expect(try await client.get("/v1/tasks/\(id)/stderr").text == "err\n")
            let task = try await client.get("/v1/tasks/\(id)").json
            #expect(task["status"] as? String == "failed")
            #expect(task["exit_code"] as? Int == 1)
        }
    }

    @Test func cancelAndDelete() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            let queued = try #require(try await client.postJSON("/v1/tasks", #"{"input":"1"}"#).json["id"] as? String)
            let cancelled = try await client.send(.post, "/v1/tasks/\(queued)/cancel")
            #expect(cancelled.status == .ok)
            #expect(try cancelled.json["status"] as? String == "cancelled")

            let running = try #require(try await client.postJSON("/v1/tasks", #"{"input":"2"}"#).json["id"] as? String)
            _ = try await harness.store.claim(worker: "w1", leaseDuration: .seconds(30), now: Date())
            let pending = try await client.send(.post, "/v1/tasks/\(running)/cancel")
            #expect(pending.status == .accepted)
            #expect(try pending.json["cancel_requested"] as? Bool == true)
            #expect(try pending.json["status"] as? String == "running")

            let deleted = try await client.send(.delete, "/v1/tasks/\(running)")
            #expect(deleted.status == .noContent)
            #expect(try await client.get("/v1/tasks/\(running)").status == .notFound)
            #expect(try await client.send(.delete, "/v1/tasks/\(running)").status == .notFound)
            #expect(try await client.get("/v1/tasks/not-a-uuid").status == .notFound)
        }
        #expect(try await harness.taskCount() == 1)
    }

    @Test func listFiltersAndPaginates() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            for i in 0..<5 {
                #expect(try await client.postJSON("/v1/tasks", #"{"name":"n\#(i % 2)","input":"\#(i)"}"#).status == .created)
            }
            _ = try await client.postJSON("/v1/tasks", #"{"input":"other"}"#, token: Harness.otherTenant)
            var seen: [String] = []
            var cursor: String?
            repeat {
                let uri = "/v1/tasks?limit=2" + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
                let page = try await client.get(uri).json
                let tasks = try #require(page["tasks"] as? [[String: Any]])
                #expect(tasks.count <= 2)
                seen += tasks.compactMap { $0["id"] as? String }
                cursor = page["next_cursor"] as? String
            } while cursor != nil
            #expect(seen.count == 5 && Set(seen).count == 5, "\(seen)")

            let named = try #require(try await client.get("/v1/tasks?name=n0").json["tasks"] as? [[String: Any]])
            #expect(named.count == 3)
            _ = try await harness.runWorker()
            let succeeded = try #require(try await client.get("/v1/tasks?status=succeeded").json["tasks"] as? [[String: Any]])
            #expect(succeeded.count == 1)
            #expect(try await client.get("/v1/tasks?policy=node").json["tasks"] as? [Any] != nil)

            #expect(try await client.get("/v1/tasks?status=done").error.field == "status")
            #expect(try await client.get("/v1/tasks?limit=0").error.field == "limit")
            #expect(try await client.get("/v1/tasks?limit=x").status == .badRequest)
            #expect(try await client.get("/v1/tasks?cursor=garbage").error.field == "cursor")
        }
    }
}

/// Frames of an event stream (comments and `retry:` skipped), with multi-line data joined by `\n`.
func parseSSE(_ text: String) -> [(id: String, event: String, data: String)] {
    var out: [(id: String, event: String, data: String)] = []
    for block in text.components(separatedBy: "\n\n") where !block.isEmpty {
        var id = "", event = "message"
        var data: [String] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
            else if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
            else if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
        }
        if !data.isEmpty { out.append((id, event, data.joined(separator: "\n"))) }
    }
    return out
}

@Suite struct WaitLatencyTests {
    /// A worker that wakes on the notifier (as the pool does) and finishes each task at once: the
    /// API's share of `POST /v1/tasks?wait` is what remains. A loose bound; the median is printed.
    @Test func waitWakesOnTheNotifierNotThePoll() async throws {
        let harness = try await Harness(config: APIConfiguration(pollInterval: .seconds(5)))
        let changes = harness.notifier.changes(of: nil)
        let worker = Task {
            for await _ in changes {
                while try await harness.runWorkerIfAny() {}
            }
        }
        defer { worker.cancel() }
        let durations = try await harness.test { client in
            var durations: [Duration] = []
            for _ in 0..<30 {
                let start = ContinuousClock.now
                let response = try await client.postJSON("/v1/tasks?wait=10", #"{"input":"true"}"#)
                durations.append(ContinuousClock.now - start)
                #expect(response.status == .ok)
            }
            return durations
        }
        let median = durations.sorted()[durations.count / 2]
        print("POST /v1/tasks?wait median with an instant worker: \(median)")
        #expect(median < .milliseconds(50))
    }
}

extension Harness {
    /// Claims and finishes one task if there is one; false when the queue is empty.
    func runWorkerIfAny() async throws -> Bool {
        guard let claimed = try await store.claim(worker: "w2", leaseDuration: .seconds(30), now: Date()) else { return false }
        let report = AttemptReport(outcome: .exited, exitCode: 0, policyName: claimed.task.spec.policy)
        _ = try await store.finishAttempt(taskID: claimed.task.id, attempt: claimed.attempt, worker: "w2", outcome: .exited, report: report, disposition: .succeeded, now: Date())
        notifier.changed(claimed.task.id, .ended)
        return true
    }
}
