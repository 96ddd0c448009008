import EdgyPolicy

/// The nftables text for the egress table and for one jail's chains. Pure, so that tests read
/// what edgyd installs; the order of a jail's rules is the order of `Policy.Network.decide`.
///
/// The table (family inet, one per host):
/// - `forward` sends a packet from a jail's interface to that jail's `out_N` chain and a packet
///   to it to `in_N` (verdict maps keyed by interface name); any other packet of a jail
///   interface is dropped (a jail being set up or torn down). When the host did not forward
///   before edgyd turned forwarding on, it still forwards nothing but jail connections (`tag`
///   tags them as they enter).
/// - `input` lets jails reach the resolver's port and nothing else of the host.
/// - `prerouting` redirects a jail's UDP port 53, whatever the address, to the resolver.
/// - `postrouting` masquerades jail traffic leaving by any other interface.
enum EgressRuleset {
    /// The conntrack mark of every jail connection (of any edgyd on the host): the forward chain
    /// that keeps a host that did not forward from forwarding lets these through, so that two
    /// tables (two daemons, or tests beside a daemon) do not drop each other's jails' traffic.
    static let jailMark = "0x65646779"

    static func table(_ c: EgressConfiguration, hostForwardedBefore: Bool) -> String {
        let jails = "\"\(c.interfacePrefix)*\""
        let reserved = ReservedRanges.all.map { $0.network.description }.joined(separator: ", ")
        return """
        table inet \(c.table) {
          set reserved { type ipv4_addr; flags interval; elements = { \(reserved) } }
          map jail_out { type ifname : verdict; }
          map jail_in { type ifname : verdict; }
          chain forward {
            type filter hook forward priority filter; policy accept;
            iifname vmap @jail_out
            oifname vmap @jail_in
            iifname \(jails) drop
            oifname \(jails) drop
        \(hostForwardedBefore ? "" : "    ct mark != \(jailMark) drop\n")  }
          chain tag {
            type filter hook prerouting priority mangle; policy accept;
            iifname \(jails) ct mark set \(jailMark)
          }
          chain input {
            type filter hook input priority filter; policy accept;
            iifname \(jails) udp dport \(c.resolverPort) accept
            iifname \(jails) drop
            udp dport \(c.resolverPort) drop
          }
          chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            iifname \(jails) udp dport 53 redirect to :\(c.resolverPort)
          }
          chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr \(c.range) oifname != \(jails) masquerade
          }
        }

        """
    }

    /// The set elements (`address . protocol . ports`) for destinations, one per port range.
    static func elements(_ network: IPv4Network, _ rule: EgressRule) -> [String] {
        rule.portRanges.map { ports in
            let shown = ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
            return "\(network) . \(rule.transport.rawValue) . \(shown)"
        }
    }

    /// One jail's objects: its counters, sets and chains, and its entries in the verdict maps.
    static func jail(_ slot: EgressSlot, rules: [EgressRule], _ c: EgressConfiguration) -> String {
        let n = slot.index, t = "inet \(c.table)"
        var explicit: [String] = [], others: [String] = []
        for rule in rules {
            guard case .network(let network) = rule.host else { continue }
            if ReservedRanges.isInside(network) { explicit += elements(network, rule) } else { others += elements(network, rule) }
        }
        let tuple = "type ipv4_addr . inet_proto . inet_service; flags interval;"
        func set(_ name: String, _ items: [String]) -> String {
            "add set \(t) \(name)_\(n) { \(tuple) \(items.isEmpty ? "" : "elements = { \(items.joined(separator: ", ")) }") }\n"
        }
        let destination = "ip daddr . meta l4proto . th dport"
        let accepted = "ct state new counter name conn_\(n) counter name out_\(n) accept"
        return ["out", "in", "conn", "refused"].map { "add counter \(t) \($0)_\(n)\n" }.joined()
            + set("explicit", explicit) + set("pinned", []) + set("allow", others)
            + "add set \(t) refusedto_\(n) { type ipv4_addr . inet_proto . inet_service; size 8; flags dynamic; }\n"
            + """
            add chain \(t) refuse_\(n)
            add rule \(t) refuse_\(n) add @refusedto_\(n) { \(destination) }
            add rule \(t) refuse_\(n) counter name refused_\(n)
            add rule \(t) refuse_\(n) meta l4proto tcp reject with tcp reset
            add rule \(t) refuse_\(n) reject with icmpx type admin-prohibited
            add chain \(t) out_\(n)
            add rule \(t) out_\(n) ct state established,related counter name out_\(n) accept
            add rule \(t) out_\(n) ip daddr \(c.range) goto refuse_\(n)
            add rule \(t) out_\(n) \(destination) @explicit_\(n) \(accepted)
            add rule \(t) out_\(n) \(destination) @pinned_\(n) \(accepted)
            add rule \(t) out_\(n) ip daddr @reserved goto refuse_\(n)
            add rule \(t) out_\(n) \(destination) @allow_\(n) \(accepted)
            add rule \(t) out_\(n) goto refuse_\(n)
            add chain \(t) in_\(n)
            add rule \(t) in_\(n) ct state established,related counter name in_\(n) accept
            add rule \(t) in_\(n) drop
            add element \(t) jail_out { "\(slot.interface)" : jump out_\(n) }
            add element \(t) jail_in { "\(slot.interface)" : jump in_\(n) }

            """
    }

    /// Removes everything `jail` added (map entries first: a chain in use cannot go).
    static func removeJail(_ slot: EgressSlot, _ c: EgressConfiguration) -> String {
        let n = slot.index, t = "inet \(c.table)"
        return """
        delete element \(t) jail_out { "\(slot.interface)" }
        delete element \(t) jail_in { "\(slot.interface)" }
        delete chain \(t) out_\(n)
        delete chain \(t) in_\(n)
        delete chain \(t) refuse_\(n)
        delete set \(t) explicit_\(n)
        delete set \(t) pinned_\(n)
        delete set \(t) allow_\(n)
        delete set \(t) refusedto_\(n)
        delete counter \(t) out_\(n)
        delete counter \(t) in_\(n)
        delete counter \(t) conn_\(n)
        delete counter \(t) refused_\(n)

        """
    }

    /// Pins resolved `addresses` for `rule` into the jail's set.
    static func pin(_ slot: EgressSlot, addresses: [UInt32], rule: EgressRule, _ c: EgressConfiguration) -> String {
        let items = addresses.flatMap { elements(IPv4Network(address: $0, prefixLength: 32), rule) }
        return "add element inet \(c.table) pinned_\(slot.index) { \(items.joined(separator: ", ")) }\n"
    }

    /// Lists the destinations the jail was refused (read as JSON by `EgressCounters`).
    static func listRefused(_ slot: EgressSlot, _ c: EgressConfiguration) -> String {
        "list set inet \(c.table) refusedto_\(slot.index)\n"
    }
}
