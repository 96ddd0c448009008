/// An IPv4 network: an address and a prefix length (a single address is a /32).
public struct IPv4Network: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Host byte order, with the bits past the prefix cleared.
    public let address: UInt32
    public let prefixLength: Int

    public init(address: UInt32, prefixLength: Int) {
        precondition((0...32).contains(prefixLength))
        self.prefixLength = prefixLength
        self.address = address & Self.mask(prefixLength)
    }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : ~UInt32(0) << (32 - length) }

    public var mask: UInt32 { Self.mask(prefixLength) }
    /// The number of addresses it holds.
    public var size: UInt64 { UInt64(1) << (32 - prefixLength) }

    public func contains(_ address: UInt32) -> Bool { address & mask == self.address }
    public func contains(_ other: IPv4Network) -> Bool { other.prefixLength >= prefixLength && contains(other.address) }
    public func overlaps(_ other: IPv4Network) -> Bool { contains(other.address) || other.contains(address) }

    public var description: String {
        prefixLength == 32 ? Self.dotted(address) : "\(Self.dotted(address))/\(prefixLength)"
    }

    public static func dotted(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
    }

    /// "10.1.2.3" → its value; nil for anything but four decimal octets (no leading zeros, which
    /// some parsers read as octal).
    public static func parseAddress(_ text: some StringProtocol) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part == "0" || !part.hasPrefix("0"), let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    /// "10.0.0.0/8" or "10.1.2.3"; nil when malformed or when bits are set past the prefix.
    public static func parse(_ text: some StringProtocol) -> IPv4Network? {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count <= 2, let address = parseAddress(pieces[0]) else { return nil }
        var length = 32
        if pieces.count == 2 {
            guard let n = Int(pieces[1]), (0...32).contains(n), pieces[1].allSatisfy(\.isNumber) else { return nil }
            length = n
        }
        let network = IPv4Network(address: address, prefixLength: length)
        return network.address == address ? network : nil
    }
}

/// The address ranges a jail never reaches unless an allow entry names them explicitly.
public enum ReservedRanges {
    public enum Kind: String, Sendable {
        /// Private networks: reachable through an exact name whose answer lies in them, or an
        /// IP/CIDR entry inside them.
        case privateNetwork = "private network"
        /// Loopback, link-local (and the cloud metadata endpoints in it), multicast, "this
        /// network" and reserved space: reachable only through an IP/CIDR entry inside them.
        case local = "host-local, link-local or reserved"
    }

    public static let all: [(network: IPv4Network, kind: Kind, name: String)] = [
        ("0.0.0.0/8", Kind.local, "\"this network\""),
        ("10.0.0.0/8", .privateNetwork, "private network"),
        ("100.64.0.0/10", .privateNetwork, "shared address space (carrier NAT)"),
        ("127.0.0.0/8", .local, "loopback"),
        ("169.254.0.0/16", .local, "link-local (cloud metadata endpoints live here)"),
        ("172.16.0.0/12", .privateNetwork, "private network"),
        ("192.168.0.0/16", .privateNetwork, "private network"),
        ("224.0.0.0/4", .local, "multicast"),
        ("240.0.0.0/4", .local, "reserved and broadcast"),
    ].map { (IPv4Network.parse($0.0)!, $0.1, $0.2) }

    /// The reserved range holding `address`, if any.
    public static func range(of address: UInt32) -> (network: IPv4Network, kind: Kind, name: String)? {
        all.first { $0.network.contains(address) }
    }

    /// True when `network` lies wholly inside one reserved range: naming it is naming that range
    /// explicitly.
    public static func isInside(_ network: IPv4Network) -> Bool {
        all.contains { $0.network.contains(network) }
    }
}

/// One entry of `[network] allow`: where a jail may connect.
///
/// Grammar: `HOST[:PORTS][/PROTOCOL]`, where HOST is a name (`pypi.internal`), a wildcard name
/// (`*.example.com`: any name under it, not the name itself), an IPv4 address or an IPv4 CIDR;
/// PORTS is a port, a range `8000-8099`, or a comma list of both; PROTOCOL is `tcp` (the
/// default) or `udp`. Without PORTS every port is allowed.
public struct EgressRule: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Host: Sendable, Hashable, Codable {
        case name(String)
        /// The suffix after `*.`.
        case wildcard(String)
        case network(IPv4Network)
    }

    public enum TransportProtocol: String, Sendable, Hashable, Codable, CaseIterable {
        case tcp, udp
    }

    public var host: Host
    /// Empty: every port.
    public var ports: [ClosedRange<UInt16>]
    public var transport: TransportProtocol
    /// The entry as written.
    public var text: String

    public var description: String { text }

    /// What makes an entry unusable, worded for `edgy policy check`.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> EgressRule {
        func fail(_ why: String) -> ParseError { ParseError(description: "\"\(text)\": \(why)") }
        var rest = Substring(text.lowercased())
        guard !rest.isEmpty else { throw fail("an empty destination") }
        var transport = TransportProtocol.tcp
        for candidate in TransportProtocol.allCases where rest.hasSuffix("/\(candidate.rawValue)") {
            transport = candidate
            rest = rest.dropLast(candidate.rawValue.count + 1)
        }
        if rest.filter({ $0 == ":" }).count > 1 || rest.hasPrefix("[") {
            throw fail("IPv6 destinations are not supported: jails have IPv4 egress only")
        }
        var ports: [ClosedRange<UInt16>] = []
        if let colon = rest.lastIndex(of: ":") {
            let portText = rest[rest.index(after: colon)...]
            rest = rest[..<colon]
            for piece in portText.split(separator: ",", omittingEmptySubsequences: false) {
                guard let range = parsePorts(piece) else {
                    throw fail("expected a port (1-65535), a range such as 8000-8099, or a comma list of them after ':', got \"\(portText)\"")
                }
                ports.append(range)
            }
        }
        let host: Host
        if rest.contains("/") || rest.allSatisfy({ $0.isNumber || $0 == "." }) {
            guard let network = IPv4Network.parse(rest) else {
                throw fail("expected an IPv4 address or CIDR such as 10.1.2.0/24 (no host bits past the prefix), got \"\(rest)\"")
            }
            host = .network(network)
        } else if rest.hasPrefix("*.") {
            let suffix = String(rest.dropFirst(2))
            guard isHostName(suffix) else { throw fail("expected a name after \"*.\", got \"\(suffix)\"") }
            host = .wildcard(suffix)
        } else {
            guard isHostName(rest) else {
                throw fail("expected a host name (letters, digits, '-', labels joined by '.'), an IPv4 address or a CIDR")
            }
            host = .name(String(rest))
        }
        return EgressRule(host: host, ports: ports, transport: transport, text: text)
    }

    private static func parsePorts(_ text: Substring) -> ClosedRange<UInt16>? {
        func port(_ s: Substring) -> UInt16? {
            guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt16(s), n > 0 else { return nil }
            return n
        }
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        switch bounds.count {
        case 1: return port(bounds[0]).map { $0...$0 }
        case 2:
            guard let low = port(bounds[0]), let high = port(bounds[1]), low <= high else { return nil }
            return low...high
        default: return nil
        }
    }

    /// A DNS name: labels of letters, digits and '-' (not at either end), at most 63 each, 253 in all.
    public static func isHostName(_ text: some StringProtocol) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    /// Whether `port` (over this entry's protocol) is allowed by it.
    public func allows(port: UInt16, transport: TransportProtocol) -> Bool {
        transport == self.transport && (ports.isEmpty || ports.contains { $0.contains(port) })
    }

    /// Whether a query for `name` (lower case, no trailing dot) is answered for this entry.
    public func matches(name: String) -> Bool {
        switch host {
        case .name(let exact): name == exact
        case .wildcard(let suffix): name.hasSuffix("." + suffix)
        case .network: false
        }
    }

    /// Why this entry is a broad grant, if it is: a CIDR of more than a /16, or a wildcard one
    /// label below the top.
    public var broadness: String? {
        switch host {
        case .network(let network) where network.prefixLength < 16:
            return "\"\(text)\" allows \(network.size) addresses; name the hosts or a narrower CIDR"
        case .wildcard(let suffix) where !suffix.contains("."):
            return "\"\(text)\" allows every name under .\(suffix)"
        default:
            return nil
        }
    }

    /// The entry's port ranges, or every port.
    public var portRanges: [ClosedRange<UInt16>] { ports.isEmpty ? [1...65535] : ports }
}
