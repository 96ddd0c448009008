import EdgyModel
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// A real `edgyd` process with real jails, driven over HTTP as a client would.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct DaemonTests {
    static func json(_ object: Any?) -> [String: Any] { object as? [String: Any] ?? [:] }

    /// Polls `GET /v1/tasks/{id}` until the task is finished.
    static func finished(_ daemon: DaemonProcess, _ id: String, timeout: TimeInterval = 60) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let (status, body) = try await daemon.request("GET", "/v1/tasks/\(id)")
            let task = json(body)
            if status == 200, let state = task["status"] as? String, ["succeeded", "failed", "cancelled"].contains(state) {
                return task
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("task \(id) did not finish in \(timeout) s")
        return [:]
    }

    static func outcomes(_ task: [String: Any]) -> [String] {
        (task["attempts"] as? [[String: Any]] ?? []).compactMap { $0["outcome"] as? String }
    }

    @Test func prototypeCurlCommandsRunJavaScriptInJails() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let post = try daemon.shell(#"curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"name":"task1", "input": "const x=1; const y=2; console.log(x+y);"}' $EDGY"#)
        let postID = try #require(Self.json(try JSONSerialization.jsonObject(with: Data(post.utf8)))["id"] as? String, "\(post)")
        let put = try daemon.shell(#"curl -s -X PUT -H "Authorization: Bearer $TOKEN" -F "file=@sample/task.js;type=text/javascript" -F "name=task1" -F "input=task.js" -H "Content-Type:multipart/form-data" $EDGY"#)
        let putID = try #require(Self.json(try JSONSerialization.jsonObject(with: Data(put.utf8)))["id"] as? String, "\(put)")

        for id in [postID, putID] {
            let task = try await Self.finished(daemon, id)
            #expect(task["status"] as? String == "succeeded", "\(task) \(daemon.log())")
            #expect(task["stdout"] as? String == "3\n")
            // GET /{id}, as the prototype's README does it.
            let get = try daemon.shell(#"curl -s -X GET -H "Authorization: Bearer $TOKEN" $EDGY/"# + id)
            #expect(Self.json(try JSONSerialization.jsonObject(with: Data(get.utf8)))["status"] as? String == "succeeded")
        }
        let deleted = try daemon.shell(#"curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $TOKEN" $EDGY/"# + postID)
        #expect(deleted == "200")
        let (status, _) = try await daemon.request("GET", "/\(postID)")
        #expect(status == 404)
    }

    /// A `?wait` answer writes the report bytes its worker encoded; they must say what the store
    /// gives back for the same task.
    @Test func waitAnswersWhatAReadOfTheTaskAnswers() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        for input in ["echo a/b; echo 'é\\u00e9' >&2", "exit 3"] {
            let (status, waited) = try await daemon.request("POST", "/v1/tasks?wait=30", json: ["policy": "sh", "input": input, "max_attempts": 1])
            #expect(status == 200)
            let task = try #require(waited as? [String: Any])
            #expect(task["stdout"] as? String == (input.hasPrefix("echo") ? "a/b\n" : ""))
            let id = try #require(task["id"] as? String)
            let (_, read) = try await daemon.request("GET", "/v1/tasks/\(id)")
            let readTask = try #require(read as? [String: Any])
            let differing = Self.differingKeys(task, readTask)
            #expect(differing.isEmpty, "\(differing.map { "\($0): \(task[$0] ?? "-") / \(readTask[$0] ?? "-")" })")
            var changed = try #require(task["result"] as? [String: Any])
            changed["exit_code"] = 99
            #expect(Self.differingKeys(task, task.merging(["result": changed]) { $1 }) == ["result"])
        }
    }

    /// The top-level keys whose values (compared deeply) differ between two JSON objects.
    static func differingKeys(_ a: [String: Any], _ b: [String: Any]) -> [String] {
        Set(a.keys).union(b.keys).sorted().filter { key in
            !(a[key].map { NSArray(array: [$0]) } ?? NSArray()).isEqual(b[key].map { NSArray(array: [$0]) } ?? NSArray())
        }
    }

    @Test func waitReturnsTheFinishedTaskAndCancelStopsASleep() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let (status, body) = try await daemon.request(
            "POST", "/v1/tasks?wait=30", json: ["name": "py", "policy": "python", "input": "print(6*7)"])
        #expect(status == 200 || status == 201)
        let task = Self.json(body)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        #expect(task["stdout"] as? String == "42\n")
        let (metricsStatus, metrics) = try await daemon.request("GET", "/metrics")
        #expect(metricsStatus == 200)
        #expect((metrics as? String)?.contains(#"edgy_attempts_total{outcome="exited"} 1"#) == true, "\(String(describing: metrics))")

        let (_, created) = try await daemon.request("POST", "/v1/tasks", json: ["name": "sleep", "policy": "sh", "input": "sleep 1000"])
        let id = try #require(Self.json(created)["id"] as? String)
        while (Self.json(try await daemon.request("GET", "/v1/tasks/\(id)").1)["status"] as? String) != "running" {
            try await Task.sleep(for: .milliseconds(20))
        }
        let started = Date()
        let (cancelStatus, _) = try await daemon.request("POST", "/v1/tasks/\(id)/cancel")
        #expect(cancelStatus == 200 || cancelStatus == 202)
        let cancelled = try await Self.finished(daemon, id, timeout: 10)
        #expect(cancelled["status"] as? String == "cancelled")
        #expect(Date().timeIntervalSince(started) < 2)
    }

    @Test func serverSentEventsArriveInOrderAndEndWithTheTask() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let (_, created) = try await daemon.request(
            "POST", "/v1/tasks", json: ["name": "sse", "policy": "sh", "input": "echo first; sleep 0.3; echo second >&2; sleep 0.3; echo third"])
        let id = try #require(Self.json(created)["id"] as? String)
        // curl -N follows the stream as a client would, until the server ends it.
        let stream = try daemon.shell(#"curl -s -N --max-time 30 -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/"# + id + "/events")
        let events = stream.components(separatedBy: "\n\n").compactMap { block -> (String, String)? in
            let lines = block.split(separator: "\n")
            guard let event = lines.first(where: { $0.hasPrefix("event: ") })?.dropFirst(7) else { return nil }
            let data = lines.filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }.joined(separator: "\n")
            return (String(event), data)
        }
        let statuses = events.filter { $0.0 == "status" }.map(\.1)
        #expect(statuses.first == "queued" || statuses.first == "running", "\(stream)")
        #expect(statuses.last == "succeeded", "\(stream)")
        let output = events.filter { $0.0 != "status" }.map { "\($0.0):\($0.1)" }
        #expect(output.joined(separator: "|").replacingOccurrences(of: "\n", with: "") == "stdout:first|stderr:second|stdout:third", "\(stream)")
    }

    @Test func setupErrorsAreRetriedThroughTheServer() async throws {
        // A policy directory with one broken policy: its mount source does not exist.
        let policies = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-policies-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies", toPath: policies)
        try """
            description = "A policy whose mount is missing on this host"
            extends = "sh"
            [[mounts]]
            source = "/usr"
            [[mounts]]
            source = "/nonexistent/edgy-test"
            [retry]
            max_attempts = 3
            """.write(toFile: policies + "/broken.toml", atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(extraArguments: ["--policies", policies])
        defer { daemon.stop() }
        let (_, created) = try await daemon.request("POST", "/v1/tasks", json: ["name": "b", "policy": "broken", "input": "echo no", "max_attempts": 3])
        let id = try #require(Self.json(created)["id"] as? String, "\(String(describing: created))")
        let task = try await Self.finished(daemon, id, timeout: 30)
        #expect(task["status"] as? String == "failed")
        #expect(Self.outcomes(task) == ["setup_error", "setup_error", "setup_error"])
    }

    /// `?wait` answers with the record the worker handed over instead of reading it back: it must
    /// be exactly what the store holds, as `GET` shows it, for every kind of ending.
    @Test func aWaitedTaskReadsExactlyAsGetShowsIt() async throws {
        let daemon = try DaemonProcess(workers: 2)
        defer { daemon.stop() }
        let inputs = ["echo out; echo err >&2; exit 0", "printf 'x%.0s' $(seq 100); exit 3", "cat", "kill -9 $$"]
        for input in inputs {
            let (status, waited) = try await daemon.request(
                "POST", "/v1/tasks?wait=30", json: ["name": "w", "policy": "sh", "input": input, "stdin": "piped\n", "max_attempts": 1])
            #expect(status == 200, "\(String(describing: waited))")
            let id = try #require(Self.json(waited)["id"] as? String)
            #expect(["succeeded", "failed"].contains(Self.json(waited)["status"] as? String ?? ""))
            let (_, read) = try await daemon.request("GET", "/v1/tasks/\(id)")
            let a = try JSONSerialization.data(withJSONObject: Self.json(waited), options: [.sortedKeys])
            let b = try JSONSerialization.data(withJSONObject: Self.json(read), options: [.sortedKeys])
            #expect(a == b, "\(input): ?wait gave\n\(String(decoding: a, as: UTF8.self))\nGET gives\n\(String(decoding: b, as: UTF8.self))")
        }
    }

    @Test func killNineMidRunLosesNothingAndLeavesNoJail() async throws {
        let daemon = try DaemonProcess(workers: 2)
        var ids: [String] = []
        for i in 0..<8 {
            let (_, body) = try await daemon.request("POST", "/v1/tasks", json: ["name": "t\(i)", "policy": "sh", "input": "sleep 2; echo done \(i)"])
            ids.append(try #require(Self.json(body)["id"] as? String))
        }
        // Wait until two attempts run (the first two: the queue is FIFO), then kill the daemon
        // without warning.
        var running = 0
        while running < 2 {
            running = 0
            for id in ids.prefix(2) where (Self.json(try await daemon.request("GET", "/v1/tasks/\(id)").1)["status"] as? String) == "running" {
                running += 1
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        daemon.crash()
        try await Task.sleep(for: .milliseconds(300))
        let survivors = Self.jailProcesses(cgroupParent: daemon.cgroupParent)
        #expect(survivors.isEmpty, "jails outlived the daemon: \(survivors)")

        try daemon.start()
        defer { daemon.stop() }
        var lost = 0
        for (i, id) in ids.enumerated() {
            let task = try await Self.finished(daemon, id, timeout: 60)
            #expect(task["status"] as? String == "succeeded", "\(task)")
            #expect(task["stdout"] as? String == "done \(i)\n")
            let outcomes = Self.outcomes(task)
            #expect(outcomes.last == "exited")
            #expect(outcomes.dropLast().allSatisfy { $0 == "lost" })
            lost += outcomes.count - 1
        }
        #expect(lost == 2, "the two interrupted attempts are recorded as lost")
        // The dead daemon's cgroups were removed at restart.
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory/\(daemon.cgroupParent)")) ?? []
        #expect(leftovers.filter { $0.hasPrefix("jail-") }.count <= 2, "\(leftovers)")
    }

    @Test func aThousandConcurrentTasksFinishExactlyOnce() async throws {
        let daemon = try DaemonProcess(workers: 2)
        defer { daemon.stop() }
        let count = 1000
        let ids = try await Self.submitConcurrently(count, clients: 16, to: [daemon])
        #expect(ids.count == count)
        #expect(Set(ids.map { $0.1 }).count == count)
        for (i, id) in ids {
            let task = try await Self.finished(daemon, id, timeout: 240)
            #expect(task["status"] as? String == "succeeded")
            #expect(task["stdout"] as? String == "\(i)\n")
            #expect(Self.outcomes(task) == ["exited"], "task \(i) ran \(Self.outcomes(task))")
        }
    }

    @Test func sighupReloadsPoliciesAndIsAudited() async throws {
        let policies = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-policies-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies", toPath: policies)
        let daemon = try DaemonProcess(extraArguments: ["--policies", policies])
        defer { daemon.stop() }
        #expect(try await daemon.request("GET", "/v1/policies/late").0 == 404)
        try "extends = \"sh\"\ndescription = \"added while running\"\n".write(toFile: policies + "/late.toml", atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        var status = 0
        for _ in 0..<100 where status != 200 {
            try await Task.sleep(for: .milliseconds(50))
            status = try await daemon.request("GET", "/v1/policies/late").0
        }
        #expect(status == 200)
        let audit = try String(contentsOfFile: daemon.stateDirectory + "/audit.log", encoding: .utf8)
        #expect(audit.contains("\"action\":\"policy.reload\""), "\(audit)")
        #expect(audit.contains("SIGHUP"))
    }

    @Test func sigtermLetsRunningAttemptsFinish() async throws {
        let daemon = try DaemonProcess(workers: 1)
        let (_, body) = try await daemon.request("POST", "/v1/tasks", json: ["name": "s", "policy": "sh", "input": "sleep 0.5; echo finished"])
        let id = try #require(Self.json(body)["id"] as? String)
        while (Self.json(try await daemon.request("GET", "/v1/tasks/\(id)").1)["status"] as? String) != "running" {
            try await Task.sleep(for: .milliseconds(10))
        }
        daemon.stop()
        #expect(daemon.termination?.code == 0, "\(daemon.log())")
        try daemon.start()
        defer { daemon.stop() }
        let task = try await Self.finished(daemon, id, timeout: 10)
        #expect(task["stdout"] as? String == "finished\n")
        #expect(Self.outcomes(task) == ["exited"])
    }

    /// A jail's end sends SIGCHLD (execve sets every process's exit signal to it) to the thread
    /// that cloned it, or for the fork server's jails to the thread that started the server. The
    /// supervisor learns of exits from pidfds, so edgyd leaves SIGCHLD at its default, ignored,
    /// and unblocked in those threads: then the kernel drops it. Blocked there, it was queued to
    /// the process and woke the main thread (parked in `sigsuspend`, nothing blocked) at every
    /// jail's end. Both ways of cloning, with the pool refilling.
    @Test(arguments: ["auto", "off"])
    func jailsEndWithoutWakingTheMainThread(forkServer: String) async throws {
        let daemon = try DaemonProcess(environment: ["EDGY_FORK_SERVER": forkServer])
        defer { daemon.stop() }
        let pid = try #require(daemon.process?.pid)
        func mainThreadSwitches() throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(pid)/task/\(pid)/status", encoding: .utf8)
            let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
            return Int(line?.split(separator: "\t").last ?? "") ?? -1
        }
        func runTrueTask() async throws {
            let (status, body) = try await daemon.request("POST", "/v1/tasks?wait=30", json: ["policy": "sh", "input": "true"])
            #expect(status == 200 && Self.json(body)["status"] as? String == "succeeded", "\(status) \(String(describing: body))")
        }
        try await runTrueTask()
        let before = try mainThreadSwitches()
        #expect(before >= 0)
        let tasks = 20
        for _ in 0..<tasks { try await runTrueTask() }
        let woken = try mainThreadSwitches() - before
        #expect(woken < tasks / 4, "edgyd's main thread woke \(woken) times during \(tasks) tasks")
        #expect(forkServer == "off" || !daemon.log().contains("cloned by edgyd itself"), "\(daemon.log())")
    }

    /// edgyd's Swift tasks (the handlers, the store's transactions, the workers) run on its
    /// event loops, `api_threads` of them, and not on Swift's own pool, whose threads woke each
    /// other several times a request. Time on CPU per thread comes from `schedstat` (ns).
    @Test func swiftTasksRunOnTheEventLoops() async throws {
        let daemon = try DaemonProcess(environment: ["EDGY_API_THREADS": "1"])
        defer { daemon.stop() }
        let pid = try #require(daemon.process?.pid)
        /// Nanoseconds on CPU of Swift's cooperative pool ("com.apple.root.default-qos") and of
        /// the event loops' threads (with the threads they started, which take their name).
        func cpu() -> (pool: Int, loops: Int) {
            var (pool, loops) = (0, 0)
            for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
                guard let comm = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8),
                      let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/schedstat", encoding: .utf8),
                      let ns = Int(stat.split(separator: " ").first ?? "") else { continue }
                if comm.contains("default-qos") && !comm.contains("overcommit") { pool += ns }
                if comm.hasPrefix("NIO-") { loops += ns }
            }
            return (pool, loops)
        }
        func runTrueTask() async throws {
            let (status, body) = try await daemon.request("POST", "/v1/tasks?wait=30", json: ["policy": "sh", "input": "true"])
            #expect(status == 200 && Self.json(body)["status"] as? String == "succeeded", "\(status) \(String(describing: body))")
        }
        try await runTrueTask()
        let before = cpu()
        for _ in 0..<20 { try await runTrueTask() }
        let after = cpu()
        let (pool, loops) = (after.pool - before.pool, after.loops - before.loops)
        #expect(loops > 0 && pool * 10 < loops, "CPU of Swift's pool \(pool) ns, of the event loops \(loops) ns")
        let loopThreads = Set(((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap {
            (try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }.filter { $0.hasPrefix("NIO-") })
        #expect(loopThreads.count == 1, "\(loopThreads)")
    }

    /// Submits `count` tasks `echo i` from `clients` concurrent clients, spread over `hosts`;
    /// returns (i, task id) pairs.
    static func submitConcurrently(_ count: Int, clients: Int, to hosts: [DaemonProcess]) async throws -> [(Int, String)] {
        try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for client in 0..<clients {
                group.addTask {
                    let host = hosts[client % hosts.count]
                    var mine: [(Int, String)] = []
                    for i in stride(from: client, to: count, by: clients) {
                        let (status, body) = try await host.request("POST", "/v1/tasks", json: ["name": "n\(i)", "policy": "sh", "input": "echo \(i)"])
                        guard status == 201, let id = json(body)["id"] as? String else {
                            throw DaemonError("submit \(i): \(status) \(String(describing: body))")
                        }
                        mine.append((i, id))
                    }
                    return mine
                }
            }
            var all: [(Int, String)] = []
            for try await part in group { all.append(contentsOf: part) }
            return all
        }
    }

    /// Live processes on the host running as a jail's unprivileged id (zombies are dead: they
    /// wait for the host's init to reap them).
    /// Live processes in the jail cgroups of the daemon with `cgroupParent` (not those of daemons
    /// of other tests running meanwhile).
    static func jailProcesses(cgroupParent: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.filter { Int($0) != nil }.compactMap { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  !status.contains("\nState:\tZ"),
                  let cgroups = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8),
                  cgroups.contains("/\(cgroupParent)/") else { return nil }
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
                  let uid = UInt32(line.split(separator: "\t")[1]), uid >= 1_000_000_000 else { return nil }
            return pid
        }
    }
}
