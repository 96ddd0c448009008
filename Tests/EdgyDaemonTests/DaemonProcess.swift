import EdgyCgroup
import EdgyModel
import EdgyTestSupport
import Foundation
import Glibc
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `edgyd` process on a free loopback port with its own state directory.
final class DaemonProcess: @unchecked Sendable {
    // @unchecked because: `process` is only touched from the test that owns this value, one step at a time.
    let port: Int
    let stateDirectory: String
    let cgroupParent: String
    private(set) var process: BoundedProcess?
    /// How the last run of the daemon ended, once `stop()` or `crash()` returned.
    private(set) var termination: BoundedProcess.Termination?
    private(set) var token: String = ""
    let logPath: String

    init(
        workers: Int = 2, stateDirectory: String? = nil, extraArguments: [String] = [], environment: [String: String] = [:],
        policies: String = TestSupport.repositoryRoot + "/policies", launcher: [String] = []
    ) throws {
        self.launcher = launcher
        self.policies = policies
        self.extraEnvironment = environment
        port = Self.freePort()
        ownsStateDirectory = stateDirectory == nil
        self.stateDirectory = stateDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("edgyd-test-\(UUID().uuidString.prefix(8))").path
        cgroupParent = "edgyd-test-" + String(UUID().uuidString.prefix(8))
        logPath = self.stateDirectory + ".log"
        self.extraArguments = extraArguments
        self.workers = workers
        try start()
    }

    private let extraArguments: [String]
    /// A program (and its arguments) that runs edgyd: `launcher + [edgyd] + arguments`.
    private let launcher: [String]
    /// A directory of its own (not one a test passed in to restart on): removed with its log when
    /// this value goes, so test runs do not fill /tmp.
    private let ownsStateDirectory: Bool
    private let policies: String
    private let extraEnvironment: [String: String]
    private let workers: Int

    var arguments: [String] {
        [
            "--policies", policies, "--state-dir", stateDirectory,
            "--listen", "127.0.0.1:\(port)", "--workers", String(workers), "--log-level", "info",
        ] + extraArguments
    }

    /// Starts (or restarts) the daemon and waits until it answers /readyz.
    func start() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["EDGY_CGROUP_PARENT"] = cgroupParent
        // Daemons of parallel tests would share one egress table and resolver port; a test of
        // egress turns it on with its own.
        environment["EDGY_EGRESS"] = "off"
        environment.merge(extraEnvironment) { $1 }
        let edgyd = TestSupport.productsDirectory + "/edgyd"
        let process = try BoundedProcess(
            launcher.first ?? edgyd, launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [edgyd] + arguments,
            environment: environment, stdoutPath: logPath, stderrPath: logPath)
        self.process = process
        termination = nil
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let (status, _) = try? syncRequest("GET", "/readyz", authorized: false, timeout: 5), status == 200,
               let text = try? String(contentsOfFile: stateDirectory + "/admin.token", encoding: .utf8) {
                token = text.trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            guard process.isRunning else { throw DaemonError("edgyd exited: \(log())") }
            usleep(50_000)
        }
        throw DaemonError("edgyd did not become ready: \(log())")
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL: no chance to clean up.
    func crash() {
        guard let process else { return }
        process.kill9()
        termination = process.poll()
    }

    /// SIGTERM, then waits for the exit (SIGKILL after a minute: a daemon that does not stop is a
    /// failure the caller sees in `termination`, not a hung test run).
    func stop() {
        guard let process else { return }
        termination = process.terminate(grace: .seconds(60))
    }

    /// Sends a signal to the running daemon.
    func signal(_ number: Int32) {
        if let process { kill(process.pid, number) }
    }

    /// The daemon's process id, while it runs.
    var pid: pid_t? { process?.pid }

    func request(_ method: String, _ path: String, json: Any? = nil, body: Data? = nil, contentType: String? = nil, authorized: Bool = true) async throws -> (Int, Any?) {
        try syncRequest(method, path, json: json, body: body, contentType: contentType, authorized: authorized)
    }

    func syncRequest(
        _ method: String, _ path: String, json: Any? = nil, body: Data? = nil, contentType: String? = nil, authorized: Bool = true,
        timeout: TimeInterval = 120, bearer: String? = nil
    ) throws -> (Int, Any?) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        if authorized { request.setValue("Bearer \(bearer ?? token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            request.httpBody = body
            if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        }
        let semaphore = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Any?, (any Error)?) = (0, nil, nil)  // because: written once before the semaphore is signalled
        URLSession.shared.dataTask(with: request) { data, response, error in
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            var object: Any?
            if let data {
                object = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) ?? String(decoding: data, as: UTF8.self)
            }
            result = (status, object, error)
            semaphore.signal()
        }.resume()
        // URLSession's own timeout should fire first; this one keeps a lost callback from hanging the run.
        guard semaphore.wait(timeout: .now() + timeout + 30) == .success else {
            throw DaemonError("\(method) \(path): no answer within \(Int(timeout) + 30) s")
        }
        if let error = result.2 { throw error }
        return (result.0, result.1)
    }

    /// Runs a shell command (curl, as a user would) and returns its stdout.
    func shell(_ command: String, timeout: Duration = .seconds(120)) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["TOKEN"] = token
        environment["EDGY"] = "http://127.0.0.1:\(port)"
        return try BoundedProcess.run(
            "/bin/sh", ["-c", command], environment: environment, directory: TestSupport.repositoryRoot, timeout: timeout
        ).stdout
    }

    deinit {
        process?.kill9()
        if ownsStateDirectory {
            try? FileManager.default.removeItem(atPath: stateDirectory)
            try? FileManager.default.removeItem(atPath: logPath)
        }
        // A daemon killed without a restart leaves its jails' cgroups; this test owns the parent group.
        if let host = try? CgroupHost.detect(), let manager = try? CgroupManager(host: host, parentName: cgroupParent) {
            _ = manager.reapLeftovers()
        }
        for hierarchy in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] {
            rmdir("/sys/fs/cgroup/\(hierarchy)/\(cgroupParent)")
        }
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
