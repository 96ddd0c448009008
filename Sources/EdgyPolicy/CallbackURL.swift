import Foundation

/// A task's `callback_url`: where edgyd POSTs the finished task. Checked at submission (shape,
/// scheme, no credentials, not a name or literal address the operator has not allowed) and again
/// at delivery, against every address its name resolves to.
public struct CallbackURL: Sendable, Hashable, CustomStringConvertible {
    /// The URL as given.
    public let text: String
    public let secure: Bool
    /// Lower-cased; an IPv6 literal without its brackets.
    public let host: String
    public let port: Int

    public static let maximumLength = 2048

    public var description: String { text }

    /// - Throws: `CallbackURLError` saying what is wrong with it.
    public static func parse(_ text: String) throws(CallbackURLError) -> CallbackURL {
        guard !text.isEmpty, text.utf8.count <= maximumLength else {
            throw CallbackURLError("must be 1 to \(maximumLength) bytes")
        }
        guard text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value != 0x7f }) else {
            throw CallbackURLError("must be ASCII without spaces or control characters (percent-encode the rest)")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw CallbackURLError("is not a URL")
        }
        guard scheme == "https" || scheme == "http" else { throw CallbackURLError("must be http or https, not \(scheme)") }
        guard components.user == nil, components.password == nil else { throw CallbackURLError("must not carry credentials") }
        guard components.fragment == nil else { throw CallbackURLError("must not have a fragment") }
        guard var host = components.percentEncodedHost?.lowercased(), !host.isEmpty else { throw CallbackURLError("has no host") }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        guard IPv4Network.parseAddress(host) != nil || CallbackAllowlist.ipv6(host) != nil || EgressRule.isHostName(host) else {
            throw CallbackURLError("has no valid host name or address")
        }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw CallbackURLError("port \(port) is out of range") }
        return CallbackURL(text: text, secure: scheme == "https", host: host, port: port)
    }
}

public struct CallbackURLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where callbacks may go. By default anywhere public: loopback, private, link-local (the cloud
/// metadata endpoints), carrier-NAT, multicast and reserved IPv4 ranges are refused, and so is
/// IPv6 outside global unicast (and the documentation and 6to4 prefixes). The operator's
/// `webhook_allow` entries (IPv4 addresses and CIDRs, IPv6 addresses, host names) are let
/// through even when they lie in those ranges.
public struct CallbackAllowlist: Sendable, Hashable {
    enum Entry: Sendable, Hashable {
        case network(IPv4Network)
        case ipv6([UInt8])
        case name(String)
    }

    let entries: [Entry]

    public init() { entries = [] }

    /// - Throws: `CallbackURLError` naming the entry that is neither an address, a CIDR nor a name.
    public static func parse(_ list: [String]) throws(CallbackURLError) -> CallbackAllowlist {
        var entries: [Entry] = []
        for raw in list {
            let entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if let network = IPv4Network.parse(entry) {
                entries.append(.network(network))
            } else if let bytes = ipv6(entry) {
                entries.append(.ipv6(bytes))
            } else if EgressRule.isHostName(entry) {
                entries.append(.name(entry))
            } else {
                throw CallbackURLError("webhook_allow entry \"\(raw)\" is not an IPv4 address or CIDR, an IPv6 address or a host name")
            }
        }
        return CallbackAllowlist(entries: entries)
    }

    private init(entries: [Entry]) { self.entries = entries }

    /// Why `url` is refused before anything is resolved (a literal address in a refused range, a
    /// `localhost` name), or nil.
    public func refusal(_ url: CallbackURL) -> String? {
        if entries.contains(.name(url.host)) { return nil }
        if let address = IPv4Network.parseAddress(url.host) { return refusal(ipv4: address) }
        if let bytes = Self.ipv6(url.host) { return refusal(ipv6: bytes) }
        if url.host == "localhost" || url.host.hasSuffix(".localhost") { return "\(url.host) is this host" }
        return nil
    }

    /// Why connecting to `address` (4 or 16 bytes, as a resolver answered for `host`) is refused, or nil.
    public func refusal(address: [UInt8], host: String) -> String? {
        if entries.contains(.name(host)) { return nil }
        switch address.count {
        case 4: return refusal(ipv4: address.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16: return refusal(ipv6: address)
        default: return "an address of \(address.count) bytes"
        }
    }

    private func refusal(ipv4 address: UInt32) -> String? {
        guard let range = ReservedRanges.range(of: address) else { return nil }
        if entries.contains(where: { if case .network(let network) = $0 { network.contains(address) } else { false } }) { return nil }
        return "\(IPv4Network.dotted(address)) is in \(range.network) (\(range.name))"
    }

    private func refusal(ipv6 bytes: [UInt8]) -> String? {
        if entries.contains(.ipv6(bytes)) { return nil }
        // An IPv4-mapped address is its IPv4 address.
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return refusal(ipv4: bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        let globalUnicast = bytes[0] & 0xe0 == 0x20
        let documentation = bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8
        let sixToFour = bytes[0] == 0x20 && bytes[1] == 0x02
        if globalUnicast && !documentation && !sixToFour { return nil }
        return "an IPv6 address outside global unicast (loopback, link-local, unique local, multicast or reserved)"
    }

    /// The 16 bytes of an IPv6 literal, or nil.
    static func ipv6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.utf8.count <= 45 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET6, text, &bytes) == 1 ? bytes : nil
    }
}
