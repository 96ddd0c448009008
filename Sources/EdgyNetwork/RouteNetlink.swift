import EdgySystem
import Glibc

/// The rtnetlink requests an egress jail needs, sent straight to the kernel: what `ip link add
/// NAME type veth peer name eth0 netns PID`, `ip addr add`, `ip link set NAME up` and `ip link del`
/// do, without a process per jail (the pool thread makes one pair per parked jail). One socket per
/// call, so callers on any thread share nothing.
enum RouteNetlink {
    struct Failure: Error, CustomStringConvertible {
        var what: String
        var errno: Int32
        var description: String { "\(what): \(errnoName(errno))" }
    }

    // linux/rtnetlink.h, linux/netlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h
    private static let newLink: UInt16 = 16, deleteLink: UInt16 = 17, newAddress: UInt16 = 20
    private static let request: UInt16 = 0x1, acknowledge: UInt16 = 0x4, exclusive: UInt16 = 0x200, create: UInt16 = 0x400
    private static let errorMessage: UInt16 = 2
    private static let interfaceName: UInt16 = 3, linkInfo: UInt16 = 18, namespacePID: UInt16 = 19
    private static let infoKind: UInt16 = 1, infoData: UInt16 = 2, vethPeer: UInt16 = 1
    private static let addressLocal: UInt16 = 2, addressAddress: UInt16 = 1

    /// A veth pair: `host` here, `peer` created inside the network namespace of `pid`.
    static func addVeth(host: String, peer: String, peerNamespacePID pid: pid_t) throws(Failure) {
        var peerInfo = Message.interfaceInfo()
        peerInfo.attribute(interfaceName, string: peer)
        peerInfo.attribute(namespacePID, UInt32(bitPattern: pid))
        var data = Message()
        data.attribute(vethPeer, bytes: peerInfo.bytes)
        var info = Message()
        info.attribute(infoKind, string: "veth")
        info.attribute(infoData, bytes: data.bytes)
        var body = Message.interfaceInfo()
        body.attribute(interfaceName, string: host)
        body.attribute(linkInfo, bytes: info.bytes)
        try send(newLink, flags: create | exclusive, body.bytes, what: "create veth pair \(host)")
    }

    /// `address`/`prefixLength` (host byte order) on interface `index`.
    static func addAddress(index: UInt32, address: UInt32, prefixLength: Int) throws(Failure) {
        var body = Message()
        body.bytes += [UInt8(AF_INET), UInt8(prefixLength), 0, 0]
        body.append(index)
        let raw = withUnsafeBytes(of: address.bigEndian) { Array($0) }
        body.attribute(addressLocal, bytes: raw)
        body.attribute(addressAddress, bytes: raw)
        try send(newAddress, flags: create | exclusive, body.bytes, what: "address of interface \(index)")
    }

    static func setUp(index: UInt32) throws(Failure) {
        let up = UInt32(IFF_UP)
        try send(newLink, flags: 0, Message.interfaceInfo(index: index, flags: up, change: up).bytes, what: "link up of interface \(index)")
    }

    /// Removes interface `name` (and its peer); nothing if it is gone already.
    static func delete(_ name: String) throws(Failure) {
        var body = Message.interfaceInfo()
        body.attribute(interfaceName, string: name)
        do {
            try send(deleteLink, flags: 0, body.bytes, what: "delete \(name)")
        } catch where error.errno == ENODEV {
            return
        }
    }

    /// Sends one request and waits for its acknowledgement.
    private static func send(_ type: UInt16, flags: UInt16, _ body: [UInt8], what: String) throws(Failure) {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(what: "\(what): netlink socket", errno: errno) }
        defer { closeDescriptor(fd) }
        var message = Message()
        message.append(UInt32(16 + body.count))
        message.append(type)
        message.append(request | acknowledge | flags)
        message.append(UInt32(1))  // sequence: one request per socket
        message.append(UInt32(0))
        message.bytes += body
        let sent = message.bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.bytes.count else { throw Failure(what: what, errno: sent < 0 ? errno : EIO) }
        var reply = [UInt8](repeating: 0, count: 8192)
        var received = 0
        repeat {
            received = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while received < 0 && errno == EINTR
        guard received >= 20 else { throw Failure(what: "\(what): no acknowledgement", errno: received < 0 ? errno : EIO) }
        let replyType = UInt16(reply[4]) | UInt16(reply[5]) << 8
        guard replyType == errorMessage else { throw Failure(what: "\(what): unexpected reply \(replyType)", errno: EPROTO) }
        let code = reply[16..<20].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        if code != 0 { throw Failure(what: what, errno: -code) }
    }

    /// A netlink payload under construction (host byte order, as netlink wants): fixed headers,
    /// then 4-byte aligned attributes.
    private struct Message {
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
        static func interfaceInfo(index: UInt32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> Message {
            var m = Message()
            m.bytes += [UInt8(AF_UNSPEC), 0, 0, 0]
            m.append(index)
            m.append(flags)
            m.append(change)
            return m
        }
    }
}
