/// Whether a jail of a policy may reach a destination, and which entry says so: what
/// `edgy policy explain --connect` prints, and the same order of rules the host's nftables
/// chain applies (explicit reserved entries, pinned names, the reserved ranges, other entries).
public struct EgressDecision: Sendable, Equatable, CustomStringConvertible {
    public var allowed: Bool
    /// The allow entry that decided, if one did.
    public var rule: String?
    public var reason: String

    public var description: String { (allowed ? "allowed: " : "refused: ") + reason }
}

extension Policy.Network {
    /// The allow entries, parsed (a loaded policy's entries all parse: the loader checked them).
    public var rules: [EgressRule] { allow.compactMap { try? EgressRule.parse($0) } }

    /// The decision for a connection to `address`:`port`.
    public func decide(address: UInt32, port: UInt16, transport: EgressRule.TransportProtocol = .tcp) -> EgressDecision {
        let shown = "\(IPv4Network.dotted(address)):\(port)/\(transport.rawValue)"
        guard mode == .egress else { return Self.noEgress(mode, shown) }
        let matching = rules.filter { rule in
            if case .network(let n) = rule.host { return n.contains(address) }
            return false
        }
        let withPort = matching.filter { $0.allows(port: port, transport: transport) }
        if let explicit = withPort.first(where: { rule in
            if case .network(let n) = rule.host { return ReservedRanges.isInside(n) }
            return false
        }) {
            return EgressDecision(allowed: true, rule: explicit.text, reason: "\(shown) by \"\(explicit.text)\", which names that reserved range explicitly")
        }
        if let reserved = ReservedRanges.range(of: address) {
            return EgressDecision(
                allowed: false, rule: nil,
                reason: "\(shown) is in \(reserved.network) (\(reserved.name)), reachable only through an entry inside that range")
        }
        if let rule = withPort.first {
            return EgressDecision(allowed: true, rule: rule.text, reason: "\(shown) by \"\(rule.text)\"")
        }
        if let rule = matching.first {
            return EgressDecision(allowed: false, rule: nil, reason: "\(shown): \"\(rule.text)\" names the host but not this port and protocol")
        }
        return EgressDecision(allowed: false, rule: nil, reason: "\(shown): no allow entry names this address")
    }

    /// The decision for a connection to a name: allowed when an entry lists the name (the
    /// resolver answers it and pins the answer), refused otherwise (the resolver answers NXDOMAIN).
    public func decide(name rawName: String, port: UInt16, transport: EgressRule.TransportProtocol = .tcp) -> EgressDecision {
        let name = rawName.lowercased().hasSuffix(".") ? String(rawName.lowercased().dropLast()) : rawName.lowercased()
        let shown = "\(name):\(port)/\(transport.rawValue)"
        guard mode == .egress else { return Self.noEgress(mode, shown) }
        let matching = rules.filter { $0.matches(name: name) }
        if let rule = matching.first(where: { $0.allows(port: port, transport: transport) }) {
            let answers = if case .wildcard = rule.host { "public addresses only" } else { "public or private addresses, never loopback or link-local" }
            return EgressDecision(
                allowed: true, rule: rule.text,
                reason: "\(shown) by \"\(rule.text)\": edgyd's resolver answers the name (\(answers)) and pins the answer for the task")
        }
        if let rule = matching.first {
            return EgressDecision(allowed: false, rule: nil, reason: "\(shown): \"\(rule.text)\" names the host but not this port and protocol")
        }
        return EgressDecision(allowed: false, rule: nil, reason: "\(shown): no allow entry lists the name, so the resolver answers NXDOMAIN")
    }

    private static func noEgress(_ mode: Policy.NetworkMode, _ shown: String) -> EgressDecision {
        EgressDecision(allowed: false, rule: nil, reason: "\(shown): [network] mode is \"\(mode.rawValue)\", which reaches nothing outside the jail")
    }
}

extension EgressRule {
    /// Whether the resolver may hand out `address` for a name this entry matched: private
    /// answers only for an exact name, loopback, link-local and reserved answers never.
    public func acceptsAnswer(_ address: UInt32) -> Bool {
        switch ReservedRanges.range(of: address)?.kind {
        case nil: true
        case .privateNetwork?: if case .name = host { true } else { false }
        case .local?: false
        }
    }
}
