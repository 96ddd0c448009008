import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// edgyd with egress on: the shipped `egress` policy loads and runs, and a `kill -9` of the
/// daemon leaves nothing behind once it starts again. Its table, interface prefix, addresses and
/// resolver port are its own, so daemons of other tests are untouched.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct EgressDaemonTests {
    let table = "edgyd_t\(getpid() % 100_000)"
    let prefix = "edd\(getpid() % 100_000)"

    func daemon() throws -> DaemonProcess {
        try DaemonProcess(environment: [
            // No parked jails: after the task, nothing of it may remain.
            "EDGY_JAIL_POOL": "0", "EDGY_EGRESS": "auto", "EDGY_EGRESS_TABLE": table, "EDGY_EGRESS_INTERFACE_PREFIX": prefix,
            "EDGY_EGRESS_RANGE": "10.241.0.0/24", "EDGY_EGRESS_RESOLVER_PORT": String(DaemonProcess.freePort()),
        ])
    }

    func interfaces() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
    }

    func tableListing() async throws -> String? {
        let listed = try await BoundedProcess.run("/usr/sbin/nft", ["list", "table", "inet", table], timeout: .seconds(10))
        return listed.termination.status == 0 ? listed.stdout : nil
    }

    @Test func aKilledDaemonLeavesNoInterfaceOrRuleAfterItsRestart() async throws {
        let daemon = try daemon()
        defer { daemon.stop() }
        let (status, created) = try await daemon.request(
            "POST", "/v1/tasks", json: ["name": "hold", "policy": "egress", "input": "import time\ntime.sleep(60)\n"])
        #expect(status == 201 || status == 200, "\(String(describing: created)) \(daemon.log())")
        let id = try #require((created as? [String: Any])?["id"] as? String)
        // The jail's interface and chains exist while it runs.
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let listing = try await tableListing() ?? ""
            if interfaces().count == 1 && listing.contains("chain out_1") { break }
            guard ContinuousClock.now < deadline else { Issue.record("the egress jail never started: \(daemon.log())"); return }
            try await Task.sleep(for: .milliseconds(20))
        }

        daemon.crash()
        #expect(try await tableListing()?.contains("chain out_1") == true, "a killed daemon leaves its rules")
        try daemon.start()
        #expect(daemon.log().contains("removed egress rules left by a previous run"), "\(daemon.log())")
        // The restarted daemon takes its task back; cancelled, it leaves nothing either.
        let (cancelled, _) = try await daemon.request("POST", "/v1/tasks/\(id)/cancel")
        #expect(cancelled == 200 || cancelled == 202)
        while ((try await daemon.request("GET", "/v1/tasks/\(id)").1 as? [String: Any])?["finished_at"] as? String) == nil {
            guard ContinuousClock.now < deadline + .seconds(30) else { Issue.record("the task did not end"); return }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(interfaces().isEmpty, "\(interfaces())")
        let fresh = try #require(try await tableListing())
        #expect(!fresh.contains("chain out_"), "\(fresh)")

        daemon.stop()
        #expect(interfaces().isEmpty)
        #expect(try await tableListing() == nil, "a stopped daemon removes its table")
    }

    @Test func egressPoliciesAreRefusedWithTheReasonWhenEgressIsOff() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let (status, body) = try await daemon.request("POST", "/v1/tasks", json: ["name": "x", "policy": "egress", "input": "print(1)"])
        #expect((400..<500).contains(status), "\(String(describing: body))")
        #expect(daemon.log().contains("egress = \"off\""), "\(daemon.log())")
        #expect(daemon.log().contains("egress.toml"))
    }
}
