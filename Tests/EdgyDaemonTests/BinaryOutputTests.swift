import EdgyModel
import EdgyTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Output that is not UTF-8 survives a real edgyd with a real jail and the SQLite store: the raw
/// routes return the bytes unchanged, the JSON carries them in `stdout_base64`/`stderr_base64`.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct BinaryOutputTests {
    @Test func all256ByteValuesComeBackUnchanged() async throws {
        let daemon = try DaemonProcess(workers: 1)
        defer { daemon.stop() }
        let script = "import sys\nsys.stdout.buffer.write(bytes(range(256)))\nsys.stderr.buffer.write(bytes(range(255, -1, -1)))\n"
        let (status, created) = try await daemon.request("POST", "/v1/tasks?wait=30", json: ["name": "bytes", "policy": "python", "input": script])
        #expect(status == 200)
        let task = try #require(created as? [String: Any])
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let id = try #require(task["id"] as? String)
        let stdout = Data((0...255).map { UInt8($0) })
        let stderr = Data((0...255).reversed().map { UInt8($0) })

        // The raw routes.
        #expect(try await raw(daemon, "/v1/tasks/\(id)/stdout") == stdout)
        #expect(try await raw(daemon, "/v1/tasks/\(id)/stderr") == stderr)

        // The JSON route, read back from the store: top level and the report.
        let (_, fetched) = try await daemon.request("GET", "/v1/tasks/\(id)")
        let json = try #require(fetched as? [String: Any])
        #expect((json["stdout_base64"] as? String).flatMap { Data(base64Encoded: $0) } == stdout)
        #expect((json["stderr_base64"] as? String).flatMap { Data(base64Encoded: $0) } == stderr)
        let report = try #require(json["result"] as? [String: Any])
        #expect((report["stdout_base64"] as? String).flatMap { Data(base64Encoded: $0) } == stdout)
        // The text form stays readable for the prototype's clients: the ASCII part is intact.
        #expect((json["stdout"] as? String)?.contains("0123456789:;<=>?@ABC") == true)
    }

    func raw(_ daemon: DaemonProcess, _ path: String) async throws -> Data {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(daemon.port)\(path)")!)
        request.timeoutInterval = 30
        request.setValue("Bearer \(daemon.token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        return data
    }
}
