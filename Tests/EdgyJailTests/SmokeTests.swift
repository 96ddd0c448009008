import EdgyJail
import EdgyPolicy
import EdgyTestSupport
import Testing

@Suite struct SmokeTests {
    @Test func echoHello() async throws {
        let supervisor = try JailSupervisor(cgroups: nil)
        let report = await supervisor.run(JailRequest(policy: TestSupport.policy(["/bin/sh", "-c", "echo hello; id; hostname; ls /; exit 3"])))
        print(report)
        #expect(report.outcome == .exited)
        #expect(report.exitCode == 3)
        #expect(report.stdoutText.hasPrefix("hello\n"))
    }
}
