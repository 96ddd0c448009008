import EdgyPolicy

/// How edgyd gives `egress` jails their network: where their addresses come from, what its
/// nftables table and host interfaces are called, where its resolver listens, and names it
/// answers without asking the host's resolver.
public struct EgressConfiguration: Sendable, Hashable {
    /// Every jail gets a /30 of it (the host's end .1, the jail's .2); the first /30 is kept for
    /// the resolver's address. A /16 holds 16,383 jails at once.
    public var range: IPv4Network
    /// The nftables table (family inet) that holds every rule; removed and built anew at start.
    public var table: String
    /// Host ends of the veth pairs are `<prefix><slot>`; leftovers with this prefix are removed
    /// at start. At most 9 characters, so that every name fits in 15.
    public var interfacePrefix: String
    /// The port edgyd's resolver listens on (UDP, every address; nftables lets only jails reach
    /// it and redirects their port 53 to it).
    public var resolverPort: UInt16
    /// Answers the resolver gives before asking the host's resolver (getaddrinfo), like
    /// /etc/hosts for jails: lower-case name → IPv4 addresses (host byte order).
    public var hosts: [String: [UInt32]]

    public init(
        range: IPv4Network = IPv4Network.parse("10.231.0.0/16")!, table: String = "edgy",
        interfacePrefix: String = "edgy", resolverPort: UInt16 = 5300, hosts: [String: [UInt32]] = [:]
    ) {
        self.range = range
        self.table = table
        self.interfacePrefix = interfacePrefix
        self.resolverPort = resolverPort
        self.hosts = hosts
    }

    /// The address every jail's resolv.conf names (the first /30's host end, never assigned).
    public var resolverAddress: UInt32 { range.address + 1 }

    /// Jails that fit at once (slot 0 is the resolver's).
    public var slotCount: Int { Int(min(range.size / 4, 65_536)) - 1 }

    /// What is wrong with the settings, if anything.
    public var problem: String? {
        if range.prefixLength > 29 { return "egress range \(range) is too small: it needs at least a /29" }
        if table.isEmpty || !table.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            return "egress table \"\(table)\": letters, digits and '_' only"
        }
        if interfacePrefix.isEmpty || interfacePrefix.count > 9
            || !interfacePrefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
            return "egress interface prefix \"\(interfacePrefix)\": 1 to 9 letters and digits"
        }
        if resolverPort == 0 { return "egress resolver port must be 1-65535" }
        return nil
    }
}

/// One jail's place in the egress range: its slot, its host interface and both addresses.
public struct EgressSlot: Sendable, Hashable {
    public let index: Int
    public let interface: String
    /// The host's end of the pair, and the jail's default gateway (host byte order).
    public let hostAddress: UInt32
    public let jailAddress: UInt32
    public static let prefixLength = 30

    init(index: Int, configuration: EgressConfiguration) {
        self.index = index
        interface = "\(configuration.interfacePrefix)\(index)"
        let base = configuration.range.address + UInt32(index) * 4
        hostAddress = base + 1
        jailAddress = base + 2
    }
}
