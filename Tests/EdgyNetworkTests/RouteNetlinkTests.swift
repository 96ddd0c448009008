@testable import EdgyNetwork
import EdgyPolicy
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// The rtnetlink requests against the real kernel, in this test's own network namespace view.
@Suite(.tags(.root), .requiresRoot)
struct RouteNetlinkTests {
    let name = "ernl\(getpid() % 100_000)"

    @Test func aVethPairIsMadeAddressedRaisedAndRemoved() throws {
        defer { try? RouteNetlink.delete(name) }
        try RouteNetlink.addVeth(host: name, peer: name + "p", peerNamespacePID: getpid())
        let index = if_nametoindex(name)
        #expect(index != 0)
        #expect(if_nametoindex(name + "p") != 0, "the peer, here in our own namespace")
        try RouteNetlink.addAddress(index: index, address: IPv4Network.parseAddress("10.243.0.1")!, prefixLength: 30)
        try RouteNetlink.setUp(index: index)
        let flags = try String(contentsOfFile: "/sys/class/net/\(name)/flags", encoding: .utf8)
        #expect((Int(flags.dropFirst(2).prefix { $0.isHexDigit }, radix: 16) ?? 0) & Int(IFF_UP) != 0, "\(flags)")

        // A second pair of the same name is refused with the kernel's reason.
        #expect(throws: RouteNetlink.Failure.self) { try RouteNetlink.addVeth(host: name, peer: name + "q", peerNamespacePID: getpid()) }
        do {
            try RouteNetlink.addVeth(host: name, peer: name + "q", peerNamespacePID: getpid())
        } catch {
            #expect(error.errno == EEXIST, "\(error)")
        }

        try RouteNetlink.delete(name)
        #expect(if_nametoindex(name) == 0)
        #expect(if_nametoindex(name + "p") == 0, "the peer goes with it")
        try RouteNetlink.delete(name)  // gone already: nothing to do
    }
}
