import EdgyCgroup
import EdgyJail
import EdgyLearn
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgySeccomp
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// Real jails with `egress`, real traffic: servers in a namespace of the test's own
/// (`Upstream`), and edgyd's host side (veth pairs, nftables, resolver) as the daemon runs it.
/// One at a time: each test builds and removes its own egress table and upstream.
@Suite(.tags(.root), .requiresRoot, .serialized, .timeLimit(.minutes(2)))
struct EgressJailTests {
    static let configuration = EgressConfiguration(
        range: IPv4Network.parse("10.240.0.0/24")!, table: "edgytest", interfacePrefix: "edgyt", resolverPort: 5399,
        hosts: [
            "svc.test": [IPv4Network.parseAddress(Upstream.server)!],
            "private.test": [IPv4Network.parseAddress("10.99.0.1")!],
            "metadata.test": [IPv4Network.parseAddress("169.254.169.254")!],
            // The shipped `egress` policy's index, served by the upstream.
            "pypi.org": [IPv4Network.parseAddress(Upstream.server)!],
        ])

    /// The jail's side: connect to each `HOST:PORT:BYTES`, send BYTES, read the reply; one line each.
    static let client = """
        import socket, sys, time
        def attempt(host, port, payload):
            try:
                c = socket.create_connection((host, port), timeout=3)
                c.sendall(b'x' * payload); c.shutdown(socket.SHUT_WR)
                got = 0
                while True:
                    b = c.recv(65536)
                    if not b: break
                    got += len(b)
                print(f"{host}:{port} ok {got}")
            except OSError as e:
                print(f"{host}:{port} {type(e).__name__}")
        for arg in sys.argv[1:]:
            if arg.startswith('resolve='):
                name = arg[8:]
                try: print(f"{name} =", sorted({a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET)}))
                except OSError as e: print(f"{name} {type(e).__name__}")
            elif arg.startswith('sleep='):
                time.sleep(float(arg[6:]))
            else:
                host, port, payload = arg.rsplit(':', 2)
                attempt(host, int(port), int(payload))
        """

    struct Environment {
        let supervisor: JailSupervisor
        let upstream: Upstream
        var host: EgressHost { supervisor.egressHost! }

        func run(_ allow: [String], _ arguments: [String]) async -> AttemptReport {
            let policy = TestSupport.policy(["/usr/bin/python3", "main.py"] + arguments) { policy in
                policy.network = Policy.Network(mode: .egress, allow: allow)
                policy.limits.wallTimeS = 30
            }
            return await supervisor.run(JailRequest(policy: policy, files: [TaskFile(path: "main.py", contents: Array(EgressJailTests.client.utf8))]))
        }
    }

    func withEgress(poolSize: Int = 0, _ body: (Environment) async throws -> Void) async throws {
        let upstream = Upstream()
        try upstream.start()
        defer { upstream.shutdown() }
        let supervisor = try JailSupervisor(
            host: JailHostConfiguration(poolSize: poolSize, egress: Self.configuration), cgroups: TestSupport.sharedCgroups())
        defer { supervisor.shutdown() }
        if let why = supervisor.egressUnavailable { Issue.record("egress unavailable: \(why)"); return }
        try await body(Environment(supervisor: supervisor, upstream: upstream))
    }

    func lines(_ report: AttemptReport) -> [String] { report.stdoutText.split(separator: "\n").map(String.init) }

    @Test func anAllowedDestinationIsReachedAndNothingElse() async throws {
        try await withEgress { env in
            let report = await env.run(["\(Upstream.server):8000"], [
                "\(Upstream.server):8000:100", "\(Upstream.server):8001:100", "\(Upstream.otherHost):8000:100",
                "169.254.169.254:80:0", "10.240.0.1:5399:0",
            ])
            #expect(report.outcome == .exited && report.exitCode == 0, "\(report.outcome) \(report.stderrText) \(report.setup.map { "\($0)" } ?? "")")
            #expect(lines(report) == [
                "\(Upstream.server):8000 ok \(Upstream.replyBytes)",
                "\(Upstream.server):8001 ConnectionRefusedError",
                "\(Upstream.otherHost):8000 ConnectionRefusedError",
                "169.254.169.254:80 ConnectionRefusedError",
                "10.240.0.1:5399 ConnectionRefusedError",
            ], "\(report.stdoutText)")
            // Only the allowed connection reached a server.
            #expect(env.upstream.connections().dropFirst() == ["\(Upstream.server):8000 100"])
            let network = try #require(report.network)
            #expect(network.connections == 1)
            #expect(network.refused == 4)
            #expect(network.refusedDestinations == [
                "10.240.0.1:5399/tcp", "169.254.169.254:80/tcp", "\(Upstream.server):8001/tcp", "\(Upstream.otherHost):8000/tcp",
            ])
        }
    }

    @Test func theCountersMatchWhatWasSent() async throws {
        try await withEgress { env in
            let sent = 200_000
            let report = await env.run(["\(Upstream.server):8000"], ["\(Upstream.server):8000:\(sent)"])
            #expect(lines(report) == ["\(Upstream.server):8000 ok \(Upstream.replyBytes)"], "\(report.stdoutText)\(report.stderrText)")
            #expect(env.upstream.connections().dropFirst() == ["\(Upstream.server):8000 \(sent)"])
            let network = try #require(report.network)
            // IP and TCP headers on top of the payload: 40 to 60 bytes per packet.
            #expect(network.bytesOut >= UInt64(sent) && network.bytesOut <= UInt64(sent) + 20_000, "\(network)")
            #expect(network.bytesIn >= UInt64(Upstream.replyBytes) && network.bytesIn <= UInt64(Upstream.replyBytes) + 20_000, "\(network)")
            #expect(network.connections == 1 && network.refused == 0)
        }
    }

    @Test func anAllowedNameResolvesAndIsPinnedAndOthersDoNot() async throws {
        try await withEgress { env in
            // By address before the name is resolved: refused; after: the pin allows it.
            let report = await env.run(["svc.test:8000", "private.test:8000", "*.test:8000"], [
                "\(Upstream.server):8000:1", "resolve=svc.test", "\(Upstream.server):8000:2", "svc.test:8000:3",
                "resolve=unknown.example", "resolve=private.test", "resolve=metadata.test",
            ])
            #expect(lines(report) == [
                "\(Upstream.server):8000 ConnectionRefusedError",
                "svc.test = ['\(Upstream.server)']",
                "\(Upstream.server):8000 ok \(Upstream.replyBytes)",
                "svc.test:8000 ok \(Upstream.replyBytes)",
                "unknown.example gaierror",
                "private.test = ['10.99.0.1']",
                "metadata.test gaierror",
            ], "\(report.stdoutText)\(report.stderrText)")
        }
    }

    @Test func aPinnedNameCannotBeRepointedDuringTheTask() async throws {
        try await withEgress { env in
            async let report = env.run(["svc.test:8000"], ["resolve=svc.test", "sleep=3", "resolve=svc.test", "svc.test:8000:5"])
            let deadline = ContinuousClock.now + .seconds(20)
            while env.host.pinned("svc.test").isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            env.host.setHosts(["svc.test": [IPv4Network.parseAddress(Upstream.otherHost)!]])
            let first = await report
            #expect(lines(first) == [
                "svc.test = ['\(Upstream.server)']", "svc.test = ['\(Upstream.server)']", "svc.test:8000 ok \(Upstream.replyBytes)",
            ], "\(first.stdoutText)\(first.stderrText)")
            let later = await env.run(["svc.test:8000"], ["resolve=svc.test"])
            #expect(lines(later) == ["svc.test = ['\(Upstream.otherHost)']"])
        }
    }

    @Test func twoConcurrentJailsCannotReachEachOther() async throws {
        try await withEgress { env in
            let listen = """
                import socket
                s = socket.socket(); s.bind(('0.0.0.0', 9000)); s.listen(); s.settimeout(8)
                try:
                    s.accept(); print("accepted")
                except OSError:
                    print("nobody")
                """
            let policy = TestSupport.policy(["/usr/bin/python3", "-c", listen]) { policy in
                policy.network = Policy.Network(mode: .egress, allow: ["10.240.0.0/24"])
            }
            async let listener = env.supervisor.run(JailRequest(policy: policy))
            // Every jail address of the range, the listener's among them, even though the
            // allow list names the whole range: jails never reach jails.
            let targets = stride(from: 2, to: 64, by: 4).map { "10.240.0.\($0):9000:0" }
            let prober = await env.run(["10.240.0.0/24"], ["sleep=1"] + targets)
            #expect(!prober.stdoutText.contains(" ok "), "\(prober.stdoutText)")
            #expect(lines(prober).count == targets.count, "\(prober.stdoutText)\(prober.stderrText)")
            let listened = await listener
            #expect(listened.stdoutText == "nobody\n")
            // Its own address is local to its namespace (the kernel refuses that one), the rest nftables.
            #expect(prober.network?.refused == targets.count - 1)
        }
    }

    @Test func aResolverPortInUseMakesEgressUnavailableAndLeavesTheHostAsItWas() async throws {
        // Another program holds the resolver's port.
        let holder = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = Self.configuration.resolverPort.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        let forwardingBefore = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        let supervisor = try JailSupervisor(host: JailHostConfiguration(egress: Self.configuration), cgroups: TestSupport.sharedCgroups())
        defer { supervisor.shutdown() }
        let why = try #require(supervisor.egressUnavailable)
        #expect(why.contains("resolver cannot listen on UDP port \(Self.configuration.resolverPort): EADDRINUSE"), "\(why)")
        #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == forwardingBefore)
        let table = try await BoundedProcess.run("/usr/sbin/nft", ["list", "table", "inet", Self.configuration.table], timeout: .seconds(10))
        #expect(table.termination.status != 0, "no table is left behind")
        // An egress attempt says why it cannot run.
        let policy = TestSupport.policy(["/bin/true"]) { $0.network = Policy.Network(mode: .egress, allow: ["198.51.100.10:8000"]) }
        let report = await supervisor.run(JailRequest(policy: policy))
        #expect(report.outcome == .setupError)
        #expect(report.setup?.stage == "network", "\(String(describing: report.setup))")
        #expect(report.setup?.detail?.contains("EADDRINUSE") == true)
    }

    @Test func theShippedEgressPolicyRunsItsSample() async throws {
        try await withEgress { env in
            let root = TestSupport.repositoryRoot
            let loaded = try PolicyLoader.load(name: "egress", directory: root + "/policies")
            let sample = try String(contentsOfFile: root + "/sample/egress.py", encoding: .utf8)
            let report = await env.supervisor.run(JailRequest(
                policy: loaded.policy, policyDigest: loaded.digest, files: [TaskFile(path: "main.py", contents: Array(sample.utf8))]))
            #expect(lines(report) == ["example.com is not listed", "hello from egress"], "\(report.stdoutText)\(report.stderrText)")
            #expect(report.network?.connections == 1)
        }
    }

    /// The last shipped sample learned (the others are in `LearnTests`): under egress too, the
    /// proposal runs it, allows nothing `egress` did not, and lists the destination it reached.
    @Test func learningTheEgressSampleProposesAPolicyThatRunsIt() async throws {
        try await withEgress { env in
            let root = TestSupport.repositoryRoot
            let loaded = try PolicyLoader.load(name: "egress", directory: root + "/policies")
            let files = [TaskFile(path: "main.py", contents: Array(try String(contentsOfFile: root + "/sample/egress.py", encoding: .utf8).utf8))]
            let result: LearningResult
            do throws(LearningError) {
                result = try await PolicyLearner.learn(LearningRequest(from: loaded, policyDirectory: root + "/policies", files: files), supervisor: env.supervisor)
            } catch {
                Issue.record("learning failed: \(error.description)")
                return
            }
            #expect(result.verified, "\(result.verification.description): \(result.verification.stderrTail)")
            #expect(result.learned.destinations["inet \(Upstream.server):443"] != nil, "\(result.learned.destinations)")
            let proposed = try PolicyLoader.parse(result.proposal, name: result.name, file: "p.toml", directory: root + "/policies").policy
            #expect(try SeccompCompiler.allowedSyscallNames(proposed.seccomp).isSubset(of: SeccompCompiler.allowedSyscallNames(loaded.policy.seccomp)))
            #expect(proposed.network == loaded.policy.network, "the [network] section is egress's")
            let rerun = await env.supervisor.run(JailRequest(policy: proposed, files: files))
            #expect(lines(rerun) == ["example.com is not listed", "hello from egress"], "\(rerun.stdoutText)\(rerun.stderrText)")
        }
    }

    @Test func pooledJailsHaveTheirNetworkReadyAndNothingIsLeftAfterwards() async throws {
        try await withEgress(poolSize: 2) { env in
            for _ in 0..<3 {
                let report = await env.run(["\(Upstream.server):8000"], ["\(Upstream.server):8000:10"])
                #expect(lines(report) == ["\(Upstream.server):8000 ok \(Upstream.replyBytes)"], "\(report.stdoutText)\(report.stderrText)")
            }
            #expect(await env.supervisor.waitUntilPoolSettled(timeoutMs: 5000))
            #expect(env.host.interfaces().count == 2, "only the two parked jails keep an interface: \(env.host.interfaces())")
            env.supervisor.shutdown()
            #expect(env.host.interfaces().isEmpty)
            let table = try await BoundedProcess.run("/usr/sbin/nft", ["list", "table", "inet", Self.configuration.table], timeout: .seconds(10))
            #expect(table.termination.status != 0, "the table is gone after shutdown")
        }
    }
}
