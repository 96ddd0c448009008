import EdgyTestSupport
import Foundation
import Testing

/// Clients that hold what they open against a real `edgyd`: bodies that arrive slowly and at once,
/// connections kept idle, half-sent heads, and more connections than the daemon takes.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct HostileConnectionsDaemonTests {
    final class Statuses: @unchecked Sendable {
        // @unchecked because: every access holds `lock`.
        private let lock = NSLock()
        private var texts: [String] = []
        func add(_ text: String) { lock.withLock { texts.append(text) } }
        var all: [String] { lock.withLock { texts } }
    }

    /// Twenty-four connections each declare a 20 MB task and send 19 MB of it, then wait: 456 MB
    /// if the daemon kept every body. It keeps what its budget (32 MiB here) and the tenant's part
    /// of it allow; the rest are refused (503 `busy`, 429 `too_many_bodies`) before their bytes
    /// are read.
    @Test func bodiesArrivingAtOnceStayWithinTheBudget() throws {
        let daemon = try DaemonProcess(environment: ["EDGY_MAX_BUFFERED_REQUEST_MIB": "32"])
        defer { daemon.stop() }
        let pid = try #require(daemon.pid)
        let before = try UploadBombDaemonTests.peakRSSKiB(pid)
        let declared = 20_000_000
        let head = "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(daemon.token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(declared)\r\n\r\n"
        let part = [UInt8](repeating: UInt8(ascii: "A"), count: 19_000_000)

        let answers = Statuses()
        var connections = try (0..<24).map { _ in try RawConnection(port: daemon.port, sendTimeout: .seconds(3)) }
        let group = DispatchGroup()
        for connection in connections {
            DispatchQueue.global().async(group: group) {
                connection.send(head)
                connection.send(part)
                answers.add(connection.receive(for: .seconds(5), stopAfter: "}}").text)
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        let peak = try UploadBombDaemonTests.peakRSSKiB(pid)
        let all = answers.all
        let refused = all.filter {
            [429, 503].contains(RawConnection.status(of: $0)) && ($0.contains("\"busy\"") || $0.contains("\"too_many_bodies\""))
                && $0.contains("Retry-After")
        }
        #expect(refused.count >= 16, "\(all.map { $0.prefix(200) })")
        #expect(peak < 256 * 1024, "edgyd peaked at \(peak / 1024) MiB (\(before / 1024) MiB before)")

        // The held bodies go with their connections; a task is accepted again.
        connections.removeAll()
        let (status, _) = try daemon.syncRequest(
            "POST", "/v1/tasks?wait=30", json: ["name": "after", "policy": "sh", "input": "echo ok"])
        #expect(status == 200)
    }

    /// One address holds at most `max_connections_per_address`; the next is answered 429 and closed,
    /// and a place frees up when one of its connections closes.
    @Test func oneAddressCannotHoldMoreThanItsConnections() throws {
        let daemon = try DaemonProcess(environment: ["EDGY_MAX_CONNECTIONS_PER_ADDRESS": "8"])
        defer { daemon.stop() }
        var open: [RawConnection] = []
        var refused: (text: String, closed: Bool)?
        // The test's own HTTP client may keep a connection or two of those eight.
        for _ in 0..<9 {
            let connection = try RawConnection(port: daemon.port)
            connection.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            let answer = connection.receive(for: .seconds(5), stopAfter: "}")
            if RawConnection.status(of: answer.text) == 429 {
                let rest = connection.receive(for: .seconds(5))
                refused = (answer.text + rest.text, rest.closed)
                break
            }
            #expect(RawConnection.status(of: answer.text) == 200, "\(answer.text)")
            open.append(connection)
        }
        let answer = try #require(refused, "nine connections from one address were all served")
        #expect(answer.text.contains("\"too_many_connections\""), "\(answer.text)")
        #expect(answer.text.contains("Retry-After"), "\(answer.text)")
        #expect(answer.closed, "a refused connection is closed")
        #expect(open.count <= 8)

        open.removeAll()
        let deadline = ContinuousClock.now + .seconds(5)
        var status: Int?
        while ContinuousClock.now < deadline {
            let connection = try RawConnection(port: daemon.port)
            connection.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            status = RawConnection.status(of: connection.receive(for: .seconds(2), stopAfter: "}").text)
            if status == 200 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(status == 200, "closing connections gives their places back")
    }

    /// With `idle_timeout_s`, a head sent halfway and a kept-alive connection without requests
    /// are closed; a `?wait` request that runs longer is answered.
    @Test func idleConnectionsAreClosedAndLongRequestsAreNot() throws {
        let daemon = try DaemonProcess(environment: ["EDGY_IDLE_TIMEOUT_S": "0.5"])
        defer { daemon.stop() }
        let halfHead = try RawConnection(port: daemon.port)
        halfHead.send("GET /readyz HTTP/1.1\r\nHo")
        let idle = try RawConnection(port: daemon.port)
        idle.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(RawConnection.status(of: idle.receive(for: .seconds(5), stopAfter: "}").text) == 200)

        let start = ContinuousClock.now
        #expect(halfHead.receive(for: .seconds(5)).closed, "a half-sent head holds its connection no longer than the timeout")
        #expect(idle.receive(for: .seconds(5)).closed, "an idle kept-alive connection is closed")
        #expect(ContinuousClock.now - start < .seconds(4))

        let waiting = try RawConnection(port: daemon.port)
        let body = #"{"name":"slow","policy":"sh","input":"sleep 1.5; echo done"}"#
        waiting.send("POST /v1/tasks?wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(daemon.token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let answer = waiting.receive(for: .seconds(30), stopAfter: "\"succeeded\"")
        #expect(RawConnection.status(of: answer.text) == 200, "\(answer.text.prefix(300))")
        #expect(answer.text.contains("\"succeeded\""))
    }

    /// Past `max_connections`, a new connection waits in the listen backlog, unanswered, until
    /// others close; then it is served. (One accept may take a few connections past the maximum:
    /// the server socket's reads take up to four, hence 24 held for a maximum of 16.)
    @Test func connectionsBeyondTheMaximumWaitForAPlace() throws {
        let daemon = try DaemonProcess(environment: ["EDGY_MAX_CONNECTIONS": "16", "EDGY_MAX_CONNECTIONS_PER_ADDRESS": "0"])
        defer { daemon.stop() }
        var held = try (0..<24).map { _ in try RawConnection(port: daemon.port) }
        let late = try RawConnection(port: daemon.port)
        late.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        let early = late.receive(for: .milliseconds(700), stopAfter: "}")
        #expect(RawConnection.status(of: early.text) == nil, "served past the maximum: \(early.text)")
        held.removeAll()
        let answer = late.receive(for: .seconds(5), stopAfter: "}")
        #expect(RawConnection.status(of: early.text + answer.text) == 200, "\(answer.text)")
    }
}

/// Connections take descriptors that jails and the store need too: under a low open-file limit,
/// edgyd lowers `max_connections` to keep 1024 for them, and says so.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct OpenFileLimitDaemonTests {
    @Test func aLowOpenFileLimitLowersMaxConnectionsWithAWarning() throws {
        let daemon = try DaemonProcess(launcher: ["/usr/bin/prlimit", "--nofile=1500:1500", "--"])
        defer { daemon.stop() }
        let log = daemon.log()
        #expect(log.contains("max_connections lowered to fit the open-file limit"), "\(log)")
        #expect(log.contains("now=476"), "\(log)")
        let (status, _) = try daemon.syncRequest("POST", "/v1/tasks?wait=30", json: ["name": "t", "policy": "sh", "input": "echo ok"])
        #expect(status == 200)
    }
}

/// Reading tasks costs what the answer shows, not what the tasks hold: a page of large tasks is
/// read as paths and sizes. (Reading the files whole, sixteen such reads raised edgyd's peak by
/// 166 MiB; as summaries, by 24 MiB.)
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct LargeTaskReadsDaemonTests {
    @Test func concurrentListsOfLargeTasksDoNotLoadTheirFiles() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let pid = try #require(daemon.pid)
        // Six tasks of 15 MiB each: 90 MiB that every list would hold if it read the files.
        let file = Data(repeating: 0x41, count: 15 << 20).base64EncodedString()
        var ids: [String] = []
        for i in 0..<6 {
            let (status, body) = try daemon.syncRequest(
                "POST", "/v1/tasks",
                json: ["name": "large\(i)", "policy": "sh", "input": "true", "files": [["path": "data.bin", "content": file, "encoding": "base64"]]])
            #expect(status == 201, "\(String(describing: body).prefix(300))")
            if let id = (body as? [String: Any])?["id"] as? String { ids.append(id) }
        }
        #expect(ids.count == 6)
        let created = ids
        // Count the peak from here on.
        try "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
        let before = try UploadBombDaemonTests.peakRSSKiB(pid)

        let answers = HostileConnectionsDaemonTests.Statuses()
        let group = DispatchGroup()
        for i in 0..<16 {
            DispatchQueue.global().async(group: group) {
                let path = i % 2 == 0 ? "/v1/tasks?limit=500" : "/v1/tasks/\(created[i % created.count])"
                let (status, body) = (try? daemon.syncRequest("GET", path)) ?? (0, nil)
                answers.add("\(status) \(String(describing: body).contains("15728640"))")
            }
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        let peak = try UploadBombDaemonTests.peakRSSKiB(pid)
        #expect(answers.all.count == 16 && answers.all.allSatisfy { $0 == "200 true" }, "\(answers.all)")
        #expect(peak - before < 96 * 1024, "sixteen reads took edgyd from \(before / 1024) MiB to \(peak / 1024) MiB")
    }
}
