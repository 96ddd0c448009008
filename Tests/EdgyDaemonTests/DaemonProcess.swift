import EdgyCgroup
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
    private(set) var process: Process
    private(set) var token: String = ""
    let logPath: String

    init(workers: Int = 2, stateDirectory: String? = nil, extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        self.extraEnvironment = environment
        port = Self.freePort()
        self.stateDirectory = stateDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("edgyd-test-\(UUID().uuidString.prefix(8))").path
        cgroupParent = "edgyd-test-" + String(UUID().uuidString.prefix(8))
        logPath = self.stateDirectory + ".log"
        process = Process()
        self.extraArguments = extraArguments
        self.workers = workers
        try start()
    }

    private let extraArguments: [String]
    private let extraEnvironment: [String: String]
    private let workers: Int

    var arguments: [String] {
        [
            "--policies", TestSupport.repositoryRoot + "/policies", "--state-dir", stateDirectory,
            "--listen", "127.0.0.1:\(port)", "--workers", String(workers), "--log-level", "info",
        ] + extraArguments
    }

    /// Starts (or restarts) the daemon and waits until it answers /readyz.
    func start() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.productsDirectory + "/edgyd")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["EDGY_CGROUP_PARENT"] = cgroupParent
        environment.merge(extraEnvironment) { $1 }
        process.environment = environment
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        logHandle.seekToEndOfFile()
        process.standardError = logHandle
        process.standardOutput = logHandle
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let (status, _) = try? syncRequest("GET", "/readyz", authorized: false), status == 200,
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
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits for the exit.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    func request(_ method: String, _ path: String, json: Any? = nil, body: Data? = nil, contentType: String? = nil, authorized: Bool = true) async throws -> (Int, Any?) {
        try syncRequest(method, path, json: json, body: body, contentType: contentType, authorized: authorized)
    }

    func syncRequest(_ method: String, _ path: String, json: Any? = nil, body: Data? = nil, contentType: String? = nil, authorized: Bool = true) throws -> (Int, Any?) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 120
        if authorized { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
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
        semaphore.wait()
        if let error = result.2 { throw error }
        return (result.0, result.1)
    }

    /// Runs a shell command (curl, as a user would) and returns its stdout.
    func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.currentDirectoryURL = URL(fileURLWithPath: TestSupport.repositoryRoot)
        var environment = ProcessInfo.processInfo.environment
        environment["TOKEN"] = token
        environment["EDGY"] = "http://127.0.0.1:\(port)"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
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
