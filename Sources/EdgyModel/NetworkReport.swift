/// What an `egress` jail did on the network during one attempt, from its nftables counters.
/// A refused connection is the workload's business (it sees ECONNREFUSED or EHOSTUNREACH), never
/// a setup error: it is counted here.
public struct NetworkReport: Sendable, Hashable, Codable {
    /// IP bytes the jail sent and received over allowed connections (headers included; the
    /// resolver's traffic not).
    public var bytesOut: UInt64
    public var bytesIn: UInt64
    /// Connections (TCP, or UDP flows) to allowed destinations.
    public var connections: Int
    /// Attempts to reach anything else: packets refused (a refused TCP connect counts once).
    public var refused: Int
    /// The first refused destinations, "address:port/protocol", at most `maxRefusedShown`.
    public var refusedDestinations: [String]

    public static let maxRefusedShown = 8

    public init(bytesOut: UInt64 = 0, bytesIn: UInt64 = 0, connections: Int = 0, refused: Int = 0, refusedDestinations: [String] = []) {
        self.bytesOut = bytesOut
        self.bytesIn = bytesIn
        self.connections = connections
        self.refused = refused
        self.refusedDestinations = refusedDestinations
    }

    enum CodingKeys: String, CodingKey {
        case bytesOut = "bytes_out"
        case bytesIn = "bytes_in"
        case connections, refused
        case refusedDestinations = "refused_destinations"
    }
}
