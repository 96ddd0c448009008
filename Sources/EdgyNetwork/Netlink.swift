import EdgySystem
import Glibc

/// One netlink request and its first reply, on a socket of its own (so callers on any thread
/// share nothing): what rtnetlink (`RouteNetlink`) and the nftables counter reads
/// (`NFTablesCounters`) send to the kernel.
enum Netlink {
    struct Failure: Error, CustomStringConvertible {
        var what: String
        var errno: Int32
        var description: String { "\(what): \(errnoName(errno))" }
    }

    static let errorMessage: UInt16 = 2
    /// NETLINK_NETFILTER (linux/netlink.h): nftables' protocol.
    static let netfilterProtocol: Int32 = 12
    private static let requestFlag: UInt16 = 0x1

    /// The reply's type and payload (after its 16-byte header). An error reply with a code other
    /// than 0 throws it; an acknowledgement (code 0) is returned as `errorMessage`.
    static func request(
        protocol family: Int32, type: UInt16, flags: UInt16, body: [UInt8], what: String
    ) throws(Failure) -> (type: UInt16, payload: ArraySlice<UInt8>) {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), family)
        guard fd >= 0 else { throw Failure(what: "\(what): netlink socket", errno: errno) }
        defer { closeDescriptor(fd) }
        var message = NetlinkMessage()
        message.append(UInt32(16 + body.count))
        message.append(type)
        message.append(requestFlag | flags)
        message.append(UInt32(1))  // sequence: one request per socket
        message.append(UInt32(0))
        message.bytes += body
        let sent = message.bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.bytes.count else { throw Failure(what: what, errno: sent < 0 ? errno : EIO) }
        var reply = [UInt8](repeating: 0, count: 8192)
        var received = 0
        repeat {
            received = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while received < 0 && errno == EINTR
        guard received >= 16 else { throw Failure(what: "\(what): no reply", errno: received < 0 ? errno : EIO) }
        let length = min(Int(reply[0..<4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }), received)
        let replyType = reply[4..<6].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
        if replyType == errorMessage {
            guard length >= 20 else { throw Failure(what: "\(what): short error reply", errno: EPROTO) }
            let code = reply[16..<20].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
            if code != 0 { throw Failure(what: what, errno: -code) }
        }
        return (replyType, reply[16..<max(16, length)])
    }

    /// The attributes of `payload` (from `offset`): type (flags masked off) → value.
    static func attributes(_ payload: ArraySlice<UInt8>, from offset: Int = 0) -> [UInt16: ArraySlice<UInt8>] {
        var out: [UInt16: ArraySlice<UInt8>] = [:]
        var at = payload.startIndex + offset
        while at + 4 <= payload.endIndex {
            let length = Int(payload[at..<(at + 2)].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) })
            let type = payload[(at + 2)..<(at + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) } & 0x3fff
            guard length >= 4, at + length <= payload.endIndex else { break }
            out[type] = payload[(at + 4)..<(at + length)]
            at += (length + 3) & ~3
        }
        return out
    }
}

/// A netlink payload under construction (host byte order, as netlink wants): fixed headers, then
/// 4-byte aligned attributes.
struct NetlinkMessage {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes += $0 }
    }

    mutating func attribute(_ type: UInt16, bytes payload: [UInt8]) {
        append(UInt16(4 + payload.count))
        append(type)
        bytes += payload
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    mutating func attribute(_ type: UInt16, string: String) { attribute(type, bytes: Array(string.utf8) + [0]) }
    mutating func attribute(_ type: UInt16, _ value: UInt32) { attribute(type, bytes: withUnsafeBytes(of: value) { Array($0) }) }

    /// `struct ifinfomsg`: family, type, index, flags, change.
    static func interfaceInfo(index: UInt32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> NetlinkMessage {
        var m = NetlinkMessage()
        m.bytes += [UInt8(AF_UNSPEC), 0, 0, 0]
        m.append(index)
        m.append(flags)
        m.append(change)
        return m
    }
}

/// Reads nftables named counters straight from the kernel (NFT_MSG_GETOBJ): a jail's report
/// needs four numbers, and libnftables would first fetch the whole ruleset into its cache
/// (1.5 ms a call on the CI machine, the whole cost of egress once the pool is warm).
enum NFTablesCounters {
    private static let getObject: UInt16 = 10 << 8 | 19  // NFNL_SUBSYS_NFTABLES, NFT_MSG_GETOBJ
    private static let familyInet: UInt8 = 1  // NFPROTO_INET
    private static let objectTable: UInt16 = 1, objectName: UInt16 = 2, objectType: UInt16 = 3, objectData: UInt16 = 4
    private static let counterBytes: UInt16 = 1, counterPackets: UInt16 = 2

    /// Packets and bytes of counter `name` in inet table `table`.
    static func read(table: String, name: String) throws(Netlink.Failure) -> (packets: UInt64, bytes: UInt64) {
        var body = NetlinkMessage()
        body.bytes += [familyInet, 0, 0, 0]  // struct nfgenmsg: family, version 0, resource id 0
        body.attribute(objectTable, string: table)
        body.attribute(objectName, string: name)
        body.attribute(objectType, UInt32(1).bigEndian)  // NFT_OBJECT_COUNTER
        let reply = try Netlink.request(protocol: Netlink.netfilterProtocol, type: getObject, flags: 0, body: body.bytes, what: "counter \(name)")
        guard let data = Netlink.attributes(reply.payload, from: 4)[objectData] else {
            throw Netlink.Failure(what: "counter \(name): no data in the reply", errno: EPROTO)
        }
        let values = Netlink.attributes(data)
        func number(_ type: UInt16) -> UInt64 {
            guard let raw = values[type], raw.count == 8 else { return 0 }
            return UInt64(bigEndian: raw.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        }
        return (number(counterPackets), number(counterBytes))
    }
}
