import EdgyTestSupport
import Foundation
import Testing

/// `clients/python` against a real edgyd: its unit tests (submit, wait, logs, files, cancel, errors,
/// the async client) and its drift check against the server's `/openapi.json`, none skipped.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct PythonClientTests {
    @Test func thePythonClientsTestsPassAgainstARealDaemon() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        var environment = ProcessInfo.processInfo.environment
        environment["EDGY_URL"] = "http://127.0.0.1:\(daemon.port)"
        environment["EDGY_TOKEN"] = daemon.token
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        let client = TestSupport.repositoryRoot + "/clients/python"
        let run = try await BoundedProcess.run(
            "/usr/bin/python3", ["-m", "unittest", "discover", "-v", "-s", client + "/tests", "-t", client],
            environment: environment, directory: client, timeout: .seconds(240))
        #expect(run.termination.status == 0, "\(run.stderr)\n\(daemon.log().suffix(3000))")
        #expect(run.stderr.contains("OK"), "\(run.stderr)")
        #expect(!run.stderr.contains("skipped"), "a test of the client was skipped:\n\(run.stderr)")
        // Every test ran: eight against the daemon, four of drift, one of the webhook helpers.
        #expect(run.stderr.contains("Ran 13 tests"), "\(run.stderr)")
    }
}
