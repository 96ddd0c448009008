import EdgyPolicy
import Testing

@Suite struct EgressRuleTests {
    func network(_ allow: [String]) -> Policy.Network { Policy.Network(mode: .egress, allow: allow) }
    func address(_ text: String) -> UInt32 { IPv4Network.parseAddress(text)! }

    @Test func grammar() throws {
        let rule = try EgressRule.parse("10.1.2.0/24:5432")
        #expect(rule.host == .network(IPv4Network.parse("10.1.2.0/24")!))
        #expect(rule.ports == [5432...5432])
        #expect(rule.transport == .tcp)
        let udp = try EgressRule.parse("ntp.example.com:123/udp")
        #expect(udp.host == .name("ntp.example.com"))
        #expect(udp.transport == .udp)
        #expect(try EgressRule.parse("*.Example.com:80,8000-8099").ports == [80...80, 8000...8099])
        #expect(try EgressRule.parse("api.example.com").ports.isEmpty)
        for bad in ["", "10.1.2.3/24", "300.1.1.1", "010.1.1.1", "host:0", "host:70000", "host:9-1", "[::1]:80",
                    "fd00:ec2::254", "exa mple.com", "-bad.com", "*.", "host:80/icmp"] {
            #expect(throws: EgressRule.ParseError.self, "\(bad)") { try EgressRule.parse(bad) }
        }
    }

    @Test func reservedRangesNeedAnExplicitEntry() {
        let open = network(["0.0.0.0/0", "api.example.com:443"])
        #expect(open.decide(address: address("198.51.100.7"), port: 80).allowed)
        #expect(!open.decide(address: address("169.254.169.254"), port: 80).allowed)
        #expect(!open.decide(address: address("10.1.2.3"), port: 5432).allowed)
        #expect(!open.decide(address: address("127.0.0.1"), port: 22).allowed)
        let explicit = network(["10.1.2.0/24:5432", "169.254.169.254:80"])
        let db = explicit.decide(address: address("10.1.2.3"), port: 5432)
        #expect(db.allowed && db.rule == "10.1.2.0/24:5432")
        #expect(!explicit.decide(address: address("10.1.2.3"), port: 5433).allowed)
        #expect(explicit.decide(address: address("169.254.169.254"), port: 80).allowed)
        #expect(!explicit.decide(address: address("169.254.169.253"), port: 80).allowed)
    }

    @Test func namesAndWildcards() {
        let names = network(["pypi.internal:443", "*.example.com:443"])
        #expect(names.decide(name: "pypi.internal", port: 443).allowed)
        #expect(!names.decide(name: "pypi.internal", port: 80).allowed)
        #expect(names.decide(name: "api.example.com", port: 443).allowed)
        #expect(!names.decide(name: "example.com", port: 443).allowed)
        #expect(!names.decide(name: "evil.test", port: 443).allowed)
        #expect(!Policy.Network(mode: .loopback, allow: ["pypi.internal:443"]).decide(name: "pypi.internal", port: 443).allowed)
        // A private answer only for an exact name; link-local (metadata) never.
        let exact = names.rules[0], wildcard = names.rules[1]
        #expect(exact.acceptsAnswer(address("10.1.2.3")))
        #expect(!wildcard.acceptsAnswer(address("10.1.2.3")))
        #expect(!exact.acceptsAnswer(address("169.254.169.254")))
        #expect(!exact.acceptsAnswer(address("127.0.0.1")))
        #expect(wildcard.acceptsAnswer(address("198.51.100.10")))
    }

    @Test func broadGrantsAreNamed() throws {
        #expect(try EgressRule.parse("0.0.0.0/0").broadness != nil)
        #expect(try EgressRule.parse("*.com").broadness != nil)
        #expect(try EgressRule.parse("10.1.0.0/16").broadness == nil)
        #expect(try EgressRule.parse("*.example.com").broadness == nil)
    }
}
