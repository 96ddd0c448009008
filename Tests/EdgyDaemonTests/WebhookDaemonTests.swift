import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// Webhooks through a real edgyd and a real receiver on loopback (allowed by `webhook_allow`):
/// signed so that a receiver verifies them from its token alone, retried after failures, refused
/// for addresses nobody allowed, and kept across a restart.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct WebhookDaemonTests {
    /// A receiver in Python, independent of edgyd's code: it derives the key from the token as
    /// docs/webhooks.md says, checks each request's signature, answers the next status of
    /// `statuses` (the last one repeats), and logs each request as a JSON line.
    static let receiverScript = """
        import hashlib, hmac, http.server, json, sys
        port, log_file, token, statuses = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(",")
        secret = hmac.new(hashlib.sha256(token.encode()).hexdigest().encode(), b"edgy-webhook-v1", hashlib.sha256).hexdigest()
        count = 0
        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                global count
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["Edgy-Webhook-Timestamp"]
                expected = "v1=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                status = int(statuses[min(count, len(statuses) - 1)])
                count += 1
                with open(log_file, "a") as f:
                    f.write(json.dumps({"verified": hmac.compare_digest(self.headers["Edgy-Webhook-Signature"], expected),
                                        "attempt": self.headers["Edgy-Webhook-Attempt"], "id": self.headers["Edgy-Webhook-Id"],
                                        "answered": status, "host": self.headers["Host"], "task": json.loads(body)}) + "\\n")
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", port), Receiver)
        with open(log_file + ".ready", "w") as f:
            f.write("ready")
        server.serve_forever()
        """

    final class Receiver {
        let process: BoundedProcess
        let log: String

        init(port: Int, token: String, statuses: String) throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-hook-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try WebhookDaemonTests.receiverScript.write(toFile: directory + "/receiver.py", atomically: true, encoding: .utf8)
            log = directory + "/requests.jsonl"
            process = try BoundedProcess("/usr/bin/python3", [directory + "/receiver.py", String(port), log, token, statuses])
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: log + ".ready") {
                guard Date() < deadline, process.isRunning else { throw DaemonError("the receiver did not start") }
                usleep(20_000)
            }
        }

        /// The requests so far.
        var requests: [[String: Any]] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// Waits up to `seconds` for `count` requests.
        func waitFor(_ count: Int, seconds: Double = 30) -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(seconds)
            while requests.count < count && Date() < deadline { usleep(50_000) }
            return requests
        }

        deinit { _ = process.terminate(grace: .seconds(5)) }
    }

    static let environment = ["EDGY_WEBHOOK_ALLOW": "127.0.0.1", "EDGY_WEBHOOK_RETRY_BASE_MS": "100"]

    static func object(_ body: Any?) -> [String: Any] { body as? [String: Any] ?? [:] }

    @Test func aSignedWebhookArrivesAfterTwoFailuresAndEveryTryIsListed() async throws {
        let daemon = try DaemonProcess(environment: Self.environment)
        defer { daemon.stop() }
        let port = DaemonProcess.freePort()
        let receiver = try Receiver(port: port, token: daemon.token, statuses: "500,500,204")

        let (status, body) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "python", "input": "print(6*7)", "callback_url": "http://127.0.0.1:\(port)/hook?x=1",
        ])
        #expect(status == 201, "\(String(describing: body))")
        let id = try #require(Self.object(body)["id"] as? String)

        let requests = receiver.waitFor(3)
        #expect(requests.count == 3, "\(requests)")
        #expect(requests.allSatisfy { $0["verified"] as? Bool == true }, "a signature did not verify: \(requests)")
        #expect(requests.map { $0["attempt"] as? String } == ["1", "2", "3"])
        #expect(requests.allSatisfy { $0["id"] as? String == id })
        let task = try #require(requests.last?["task"] as? [String: Any])
        #expect(task["id"] as? String == id && task["status"] as? String == "succeeded" && task["stdout"] as? String == "42\n", "\(task)")

        // The third answer was a 204: delivered, and no fourth try comes.
        var deliveries: [String: Any] = [:]
        let deadline = Date().addingTimeInterval(10)
        repeat {
            let (_, answer) = try await daemon.request("GET", "/v1/tasks/\(id)/deliveries")
            deliveries = Self.object(answer)
        } while deliveries["state"] as? String != "delivered" && Date() < deadline && (usleep(50_000) == 0)
        #expect(deliveries["state"] as? String == "delivered", "\(deliveries)")
        #expect(deliveries["callback_url"] as? String == "http://127.0.0.1:\(port)/hook?x=1")
        let tries = try #require(deliveries["deliveries"] as? [[String: Any]])
        #expect(tries.map { $0["status_code"] as? Int } == [500, 500, 204])
        #expect(tries.map { $0["error"] as? String } == ["HTTP 500", "HTTP 500", nil])
        usleep(500_000)
        #expect(receiver.requests.count == 3)
    }

    /// A token's `callback_url` is the webhook of the tasks it creates, signed with its own key.
    @Test func aTokensDefaultCallbackIsUsed() async throws {
        let daemon = try DaemonProcess(environment: Self.environment)
        defer { daemon.stop() }
        let port = DaemonProcess.freePort()
        let (created, issued) = try await daemon.request("POST", "/v1/tokens", json: [
            "name": "hooked", "role": "submitter", "callback_url": "http://127.0.0.1:\(port)/default",
        ])
        #expect(created == 201, "\(String(describing: issued))")
        let token = try #require(Self.object(issued)["token"] as? String)
        #expect(Self.object(issued)["callback_url"] as? String == "http://127.0.0.1:\(port)/default")
        let receiver = try Receiver(port: port, token: token, statuses: "204")
        let (status, task) = try await AccessDaemonTests.request(daemon, "POST", "/v1/tasks", token: token, json: ["policy": "python", "input": "print(5)"])
        #expect(status == 201, "\(task)")
        let requests = receiver.waitFor(1)
        #expect(requests.count == 1 && requests.first?["verified"] as? Bool == true, "signed with the hooked token's key: \(requests)")
        #expect(requests.first?["id"] as? String == task["id"] as? String)
        // A refused default is refused when the token is made.
        let (refused, body) = try await daemon.request("POST", "/v1/tokens", json: [
            "name": "bad", "role": "submitter", "callback_url": "http://169.254.169.254/",
        ])
        #expect(refused == 400 && Self.object(Self.object(body)["error"])["field"] as? String == "callback_url", "\(String(describing: body))")
    }

    /// A name is resolved at delivery and every address checked; plain HTTP then goes to the
    /// checked address, with the name in `Host`.
    @Test func aNameIsResolvedCheckedAndPinned() async throws {
        let daemon = try DaemonProcess(environment: ["EDGY_WEBHOOK_ALLOW": "localhost", "EDGY_WEBHOOK_RETRY_BASE_MS": "100"])
        defer { daemon.stop() }
        let port = DaemonProcess.freePort()
        let receiver = try Receiver(port: port, token: daemon.token, statuses: "204")
        let (status, body) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "python", "input": "print(1)", "callback_url": "http://localhost:\(port)/named",
        ])
        #expect(status == 201, "\(String(describing: body))")
        let requests = receiver.waitFor(1)
        #expect(requests.first?["verified"] as? Bool == true, "\(requests)")
        #expect(requests.first?["host"] as? String == "localhost:\(port)", "\(requests)")
        // Only the name is allowed: the address it stands for, written as an address, is not.
        let (refused, _) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "python", "input": "print(1)", "callback_url": "http://127.0.0.1:\(port)/",
        ])
        #expect(refused == 400)
    }

    @Test func refusedURLsAre400() async throws {
        let daemon = try DaemonProcess(environment: Self.environment)
        defer { daemon.stop() }
        for url in ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x", "http://localhost:8080/", "http://[::1]/x",
                    "ftp://example.com/x", "http://user:pw@example.com/", "not a url", "http://[fe80::1]/"] {
            let (status, body) = try await daemon.request("POST", "/v1/tasks", json: ["policy": "python", "input": "print(1)", "callback_url": url])
            let problem = Self.object(Self.object(body)["error"])
            #expect(status == 400, "\(url): \(problem)")
            #expect(problem["field"] as? String == "callback_url", "\(url): \(problem)")
        }
        // A task without a webhook has no deliveries.
        let (_, created) = try await daemon.request("POST", "/v1/tasks", json: ["policy": "python", "input": "print(1)"])
        let id = try #require(Self.object(created)["id"] as? String)
        let (status, _) = try await daemon.request("GET", "/v1/tasks/\(id)/deliveries")
        #expect(status == 404)
    }

    /// A receiver that is down when the task finishes gets the webhook after edgyd restarts.
    @Test func aDeliveryOutlivesARestart() async throws {
        let daemon = try DaemonProcess(environment: Self.environment.merging(["EDGY_WEBHOOK_RETRY_BASE_MS": "1000"]) { $1 })
        defer { daemon.stop() }
        let port = DaemonProcess.freePort()
        let (_, created) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "python", "input": "print('late')", "callback_url": "http://127.0.0.1:\(port)/",
        ])
        let id = try #require(Self.object(created)["id"] as? String)
        // The first try fails: nothing listens.
        var tries: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(30)
        while tries.isEmpty && Date() < deadline {
            let (_, answer) = try await daemon.request("GET", "/v1/tasks/\(id)/deliveries")
            tries = Self.object(answer)["deliveries"] as? [[String: Any]] ?? []
            usleep(50_000)
        }
        #expect(tries.first?["status_code"] is NSNull, "\(tries)")
        #expect((tries.first?["error"] as? String)?.isEmpty == false)

        daemon.stop()
        let receiver = try Receiver(port: port, token: daemon.token, statuses: "200")
        try daemon.start()
        let requests = receiver.waitFor(1)
        #expect(requests.count == 1 && requests.first?["verified"] as? Bool == true, "\(requests)")
        #expect((requests.first?["task"] as? [String: Any])?["stdout"] as? String == "late\n")
    }
}
