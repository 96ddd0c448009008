import Foundation
import Glibc

/// A network namespace of a test's own, joined to the host by a veth pair: servers run inside it
/// at documentation addresses (TEST-NET ranges, never routed on the internet) that the host routes
/// to the pair, so no test packet leaves the machine. `start` checks that route first.
public final class TestNetwork: @unchecked Sendable {
    // @unchecked because: tests start, use and shut it down from one task.
    public let namespace: String
    public let link: String
    /// The host's end of the pair, e.g. "198.51.100.1".
    public let hostEnd: String
    /// The addresses the namespace holds.
    public let addresses: [String]
    public let prefixLength: Int

    public init(name: String, hostEnd: String, addresses: [String], prefixLength: Int = 24) {
        let tag = "\(getpid() % 100_000)"
        namespace = "\(name)\(tag)"
        link = "e\(name.prefix(4))\(tag)"
        self.hostEnd = hostEnd
        self.addresses = addresses
        self.prefixLength = prefixLength
    }

    public func start() throws {
        shutdown()
        try Self.ip(["netns", "add", namespace])
        try Self.ip(["link", "add", link, "type", "veth", "peer", "name", "up0", "netns", namespace])
        try Self.ip(["addr", "add", "\(hostEnd)/\(prefixLength)", "dev", link])
        try Self.ip(["link", "set", link, "up"])
        for address in addresses {
            try Self.ip(["-n", namespace, "addr", "add", "\(address)/\(prefixLength)", "dev", "up0"])
        }
        try Self.ip(["-n", namespace, "link", "set", "up0", "up"])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        for address in addresses {
            let route = try BoundedProcess.run("/usr/sbin/ip", ["route", "get", address], timeout: .seconds(10))
            guard route.stdout.contains("dev \(link)") else {
                throw TestNetworkError(description: "\(address) is not routed to \(link): \(route.stdout)")
            }
        }
    }

    /// Starts `argv` inside the namespace.
    public func launch(_ argv: [String]) throws -> BoundedProcess {
        try BoundedProcess("/usr/sbin/ip", ["netns", "exec", namespace] + argv)
    }

    /// Kills a server `launch` started (its whole process group) and waits for it.
    public func stop(_ process: BoundedProcess?) {
        guard let process else { return }
        kill(-process.pid, SIGKILL)
        _ = try? process.wait(timeout: .seconds(5))
        process.removeOutputFiles()
    }

    public func shutdown() {
        _ = try? BoundedProcess.run("/usr/sbin/ip", ["netns", "del", namespace], timeout: .seconds(10))
        _ = try? BoundedProcess.run("/usr/sbin/ip", ["link", "del", link], timeout: .seconds(10))
    }

    static func ip(_ arguments: [String]) throws {
        let result = try BoundedProcess.run("/usr/sbin/ip", arguments, timeout: .seconds(10))
        guard result.termination.status == 0 else {
            throw TestNetworkError(description: "ip \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }
}

public struct TestNetworkError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
