import EdgyModel
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// The state directory of a real `edgyd` is private whatever modes it had, and a directory others
/// could write is refused before anything is read from it.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct StateDirectoryDaemonTests {
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    static func temporaryDirectory(mode: mode_t) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edgyd-state-\(UUID().uuidString.prefix(8))").path
        try #require(mkdir(path, 0o700) == 0)
        try #require(chmod(path, mode) == 0)
        return path
    }

    @Test func modesAreTightenedAtStartUp() throws {
        let state = try Self.temporaryDirectory(mode: 0o755)
        defer { try? FileManager.default.removeItem(atPath: state) }
        // A loose audit log left from before.
        try #require(FileManager.default.createFile(atPath: state + "/audit.log", contents: nil, attributes: [.posixPermissions: 0o644]))
        let daemon = try DaemonProcess(stateDirectory: state)
        let (status, _) = try daemon.syncRequest("GET", "/v1/tasks")
        #expect(status == 200)
        daemon.stop()
        #expect(Self.mode(state) == 0o711)
        for name in ["audit.log", "admin.token", "edgy.sqlite", "edgy-blobs.sqlite"] { #expect(Self.mode(state + "/" + name) == 0o600, "\(name)") }
        for name in ["edgy.sqlite-wal", "edgy.sqlite-shm", "edgy-blobs.sqlite-wal", "edgy-blobs.sqlite-shm"] where Self.mode(state + "/" + name) != nil {
            #expect(Self.mode(state + "/" + name) == 0o600, "\(name)")
        }
        // A second start fixes files loosened while it was down.
        try #require(chmod(state + "/edgy.sqlite", 0o644) == 0)
        try #require(chmod(state, 0o750) == 0)
        let again = try DaemonProcess(stateDirectory: state)
        again.stop()
        #expect(Self.mode(state) == 0o711)
        #expect(Self.mode(state + "/edgy.sqlite") == 0o600)
    }

    @Test(arguments: [0o777 as mode_t, 0o770, 0o702])
    func writableByOthersIsRefused(mode: mode_t) throws {
        let state = try Self.temporaryDirectory(mode: mode)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let (status, output) = try Self.runEdgyd(state: state)
        #expect(status != 0)
        #expect(output.contains("writable by group or others"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: state + "/admin.token"))
    }

    @Test func parentWritableByOthersIsRefused() throws {
        let parent = try Self.temporaryDirectory(mode: 0o777)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let (status, output) = try Self.runEdgyd(state: parent + "/state")
        #expect(status != 0)
        #expect(output.contains("\(parent) is writable by group or others"), "\(output)")
    }

    @Test func ownedByAnotherUserIsRefused() throws {
        let state = try Self.temporaryDirectory(mode: 0o700)
        defer { try? FileManager.default.removeItem(atPath: state) }
        try #require(chown(state, 65534, 65534) == 0)
        let (status, output) = try Self.runEdgyd(state: state)
        #expect(status != 0)
        #expect(output.contains("owned by uid 65534"), "\(output)")
    }

    /// Runs edgyd expecting it to exit at once; kills it after 20 s otherwise.
    static func runEdgyd(state: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.productsDirectory + "/edgyd")
        process.arguments = ["--policies", TestSupport.repositoryRoot + "/policies", "--state-dir", state,
                             "--listen", "127.0.0.1:\(DaemonProcess.freePort())", "--workers", "1"]
        let logPath = state + ".log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }
}
