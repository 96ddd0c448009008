import EdgyDNS
import EdgyModel
import EdgyPolicy
import EdgySystem
import Foundation
import Glibc
import Synchronization

/// Why egress cannot be set up, worded for the operator.
public struct EgressSetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The host side of every `egress` jail: one nftables table, a veth pair and chains per jail,
/// and the resolver that answers jails' DNS queries and pins the answers (docs/network.md).
///
/// A jail's life here: `lease` (a slot: interface name and addresses, before the clone, so the
/// child knows its address), `plumb` (the veth pair into the child's network namespace and the
/// jail's rules, before its first gate), `report` (its counters, after the attempt), `release`
/// (rules, interface and slot, off the request path). All of it is done ahead of time for jails
/// parked in the pool.
public final class EgressHost: Sendable {
    public let configuration: EgressConfiguration
    let nft: NFTables
    /// Whether the host forwarded IPv4 before edgyd turned it on (then turned off again at shutdown).
    private let hostForwardedBefore: Bool
    private let state = Mutex(State())
    private let resolver: EgressResolver
    /// The configured answers; replaced as a whole by `setHosts` (a configuration reload).
    private let hosts: Mutex<[String: [UInt32]]>
    /// What an earlier edgyd left and this one removed at start: its table, and interfaces.
    public let leftovers: (table: Bool, interfaces: [String])

    private struct State {
        var nextSlot = 1
        var freeSlots: [Int] = []
        var jails: [Int: JailEgress] = [:]
        var stopped = false
    }

    /// One jail's rules and the names pinned for it so far.
    struct JailEgress {
        var slot: EgressSlot
        var rules: [EgressRule]
        var pinned: [String: [UInt32]] = [:]
    }

    /// libnftables exits the whole process when it cannot open its netlink socket (a kernel
    /// without nf_tables, or a guest that cannot load the module): ask the kernel first.
    static func netfilterNetlinkMissing() -> String? {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Netlink.netfilterProtocol)
        guard fd >= 0 else { return "this kernel has no netfilter netlink (nf_tables): \(errnoName(errno))" }
        close(fd)
        return nil
    }

    /// Removes what an earlier edgyd left (its table, its interfaces: after a `kill -9`), turns on
    /// IPv4 forwarding, installs the table, tries a scratch veth pair and starts the resolver. It
    /// is the host self-check too: a host without nf_tables or veth throws here, saying which.
    public init(_ configuration: EgressConfiguration) throws(EgressSetupError) {
        if let problem = configuration.problem { throw EgressSetupError(problem) }
        if let missing = Self.netfilterNetlinkMissing() { throw EgressSetupError(missing) }
        self.configuration = configuration
        hosts = Mutex(configuration.hosts)
        do { nft = try NFTables() } catch { throw EgressSetupError("libnftables: \(error)") }
        leftovers = Self.removeLeftovers(configuration, nft: nft)
        let forwarding = "/proc/sys/net/ipv4/ip_forward"
        hostForwardedBefore = (try? String(contentsOfFile: forwarding, encoding: .utf8))?.hasPrefix("1") ?? false
        if !hostForwardedBefore {
            guard Self.write("1", to: forwarding) else { throw EgressSetupError("cannot turn on \(forwarding): \(errnoName(errno))") }
        }
        // A failure below leaves the host as it found it.
        let restoreForwarding = { [hostForwardedBefore] in
            if !hostForwardedBefore { _ = Self.write("0", to: forwarding) }
        }
        do {
            try nft.run(EgressRuleset.table(configuration, hostForwardedBefore: hostForwardedBefore))
        } catch {
            restoreForwarding()
            throw EgressSetupError("the kernel refused nftables table \(configuration.table) (nf_tables): \(error)")
        }
        let probe = "\(configuration.interfacePrefix)probe"
        do {
            try RouteNetlink.addVeth(host: probe, peer: probe + "p", peerNamespacePID: getpid())
            try? RouteNetlink.delete(probe)
        } catch {
            _ = try? nft.run("delete table inet \(configuration.table)\n")
            restoreForwarding()
            throw EgressSetupError("the kernel refused a veth pair: \(error)")
        }
        do {
            resolver = try EgressResolver(port: configuration.resolverPort)
        } catch {
            _ = try? nft.run("delete table inet \(configuration.table)\n")
            restoreForwarding()
            throw error
        }
        resolver.start { [unowned self] query, source in self.answer(query, from: source) }
    }

    deinit { shutdown() }

    /// Stops the resolver, removes the table (and with it every jail's rules) and turns IPv4
    /// forwarding back off if edgyd turned it on. Jails still running lose their network.
    public func shutdown() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        resolver.stop()
        _ = try? nft.run("delete table inet \(configuration.table)\n")
        if !hostForwardedBefore { _ = Self.write("0", to: "/proc/sys/net/ipv4/ip_forward") }
    }

    /// A free slot for a jail that will have `rules`.
    public func lease(rules: [EgressRule]) throws(EgressSetupError) -> EgressSlot {
        let configuration = self.configuration
        let slot = state.withLock { s -> EgressSlot? in
            let index: Int
            if let free = s.freeSlots.popLast() {
                index = free
            } else if s.nextSlot <= configuration.slotCount {
                index = s.nextSlot
                s.nextSlot += 1
            } else {
                return nil
            }
            let slot = EgressSlot(index: index, configuration: configuration)
            s.jails[index] = JailEgress(slot: slot, rules: rules)
            return slot
        }
        guard let slot else { throw EgressSetupError("every address of the egress range \(configuration.range) is in use") }
        return slot
    }

    /// The veth pair (the jail's end, `eth0`, created inside the namespace of `pid`) and the
    /// jail's chains. On failure the caller releases the slot.
    public func plumb(_ slot: EgressSlot, pid: pid_t) throws(EgressSetupError) {
        do {
            try RouteNetlink.addVeth(host: slot.interface, peer: "eth0", peerNamespacePID: pid)
            let index = if_nametoindex(slot.interface)
            guard index != 0 else { throw RouteNetlink.Failure(what: "index of \(slot.interface)", errno: errno) }
            // No IPv6 on the host's end (before it is up): a jail must not reach the host over a
            // link-local address.
            _ = Self.write("1", to: "/proc/sys/net/ipv6/conf/\(slot.interface)/disable_ipv6")
            try RouteNetlink.addAddress(index: index, address: slot.hostAddress, prefixLength: EgressSlot.prefixLength)
            try RouteNetlink.setUp(index: index)
        } catch {
            throw EgressSetupError("veth pair \(slot.interface): \(error)")
        }
        let rules = state.withLock { $0.jails[slot.index]?.rules ?? [] }
        do {
            try nft.run(EgressRuleset.jail(slot, rules: rules, configuration))
        } catch {
            throw EgressSetupError("nftables rules of \(slot.interface): \(error)")
        }
    }

    /// The jail's counters now (call it once its processes are dead).
    public func report(_ slot: EgressSlot) -> NetworkReport {
        let table = configuration.table
        func counter(_ name: String) -> (packets: UInt64, bytes: UInt64) {
            (try? NFTablesCounters.read(table: table, name: "\(name)_\(slot.index)")) ?? (0, 0)
        }
        var report = NetworkReport(
            bytesOut: counter("out").bytes, bytesIn: counter("in").bytes,
            connections: Int(counter("conn").packets), refused: Int(counter("refused").packets))
        // Only then the slower listing (libnftables fetches its cache first).
        if report.refused > 0, let listing = try? nft.run(EgressRuleset.listRefused(slot, configuration), json: true) {
            report.refusedDestinations = EgressCounters.refusedDestinations(listing)
        }
        return report
    }

    /// Removes the jail's rules and interface and frees its slot. Idempotent.
    public func release(_ slot: EgressSlot) {
        let known = state.withLock { s -> Bool in s.jails[slot.index] != nil }
        guard known else { return }
        _ = try? nft.run(EgressRuleset.removeJail(slot, configuration))
        // Gone already if the jail's namespace has been freed; removing it ourselves means the
        // name is free before the slot is reused (namespace teardown is asynchronous).
        try? RouteNetlink.delete(slot.interface)
        state.withLock { s in
            if s.jails.removeValue(forKey: slot.index) != nil { s.freeSlots.append(slot.index) }
        }
    }

    /// Replaces the configured answers. Names a running jail has resolved stay pinned to their
    /// first answer until the jail ends; later jails get the new ones.
    public func setHosts(_ answers: [String: [UInt32]]) {
        hosts.withLock { $0 = answers }
    }

    /// What each live jail has pinned for `name` (for tests and diagnostics).
    public func pinned(_ name: String) -> [[UInt32]] {
        state.withLock { s in s.jails.values.compactMap { $0.pinned[name] } }
    }

    /// Interfaces of this host's prefix that exist now (for tests and the self-check).
    public func interfaces() -> [String] { Self.interfaces(prefix: configuration.interfacePrefix) }

    static func interfaces(prefix: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []
        return names.filter { name in
            name.hasPrefix(prefix) && name.count > prefix.count && name.dropFirst(prefix.count).allSatisfy(\.isNumber)
        }.sorted()
    }

    private static func removeLeftovers(_ configuration: EgressConfiguration, nft: NFTables) -> (table: Bool, interfaces: [String]) {
        let table = (try? nft.run("list table inet \(configuration.table)\n")) != nil
        if table { _ = try? nft.run("delete table inet \(configuration.table)\n") }
        let links = interfaces(prefix: configuration.interfacePrefix)
        for name in links { try? RouteNetlink.delete(name) }
        return (table, links)
    }

    static func write(_ value: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return value.withCString { Glibc.write(fd, $0, strlen($0)) } == value.utf8.count
    }

    // MARK: The resolver's decisions

    /// The answer to `query` from a jail at `source` (host byte order).
    func answer(_ query: DNSQuery, from source: UInt32) -> [UInt8] {
        let c = configuration
        guard c.range.contains(source), source & 3 == 2 else { return query.response(.refused) }
        let index = Int((source - c.range.address) / 4)
        guard let jail = state.withLock({ $0.jails[index] }) else { return query.response(.refused) }
        let matching = jail.rules.filter { $0.matches(name: query.name) }
        guard query.questionClass == DNSQuery.classIN, !matching.isEmpty else { return query.response(.nameError) }
        guard query.type == DNSQuery.typeA else { return query.response(.noError) }
        if let pinned = jail.pinned[query.name] { return query.response(.noError, addresses: pinned) }
        guard let resolved = resolve(query.name) else { return query.response(.serverFailure) }
        let accepted = resolved.filter { address in
            !c.range.contains(address) && matching.contains { $0.acceptsAnswer(address) }
        }
        // Pin before answering: the jail cannot connect to an address it has not been told.
        let pins = matching.compactMap { rule -> String? in
            let addresses = accepted.filter { rule.acceptsAnswer($0) }
            return addresses.isEmpty ? nil : EgressRuleset.pin(jail.slot, addresses: addresses, rule: rule, c)
        }
        if !pins.isEmpty {
            do { try nft.run(pins.joined()) } catch { return query.response(.serverFailure) }
        }
        // The first answer stands for the jail's lifetime, even if a second query raced it.
        let answer = state.withLock { s -> [UInt32] in
            guard var current = s.jails[index] else { return [] }
            if let earlier = current.pinned[query.name] { return earlier }
            current.pinned[query.name] = accepted
            s.jails[index] = current
            return accepted
        }
        return query.response(.noError, addresses: answer)
    }

    /// The configured answer, else the host's resolver (IPv4 only).
    private func resolve(_ name: String) -> [UInt32]? {
        if let fixed = hosts.withLock({ $0[name] }) { return fixed }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0 else { return nil }
        defer { freeaddrinfo(list) }
        var out: [UInt32] = []
        var cursor = list
        while let entry = cursor {
            if entry.pointee.ai_family == AF_INET, let raw = entry.pointee.ai_addr {
                let address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                if !out.contains(address) { out.append(address) }
            }
            cursor = entry.pointee.ai_next
        }
        return out
    }
}
