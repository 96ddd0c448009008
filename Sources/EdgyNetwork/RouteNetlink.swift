import EdgySystem
import Glibc

/// The rtnetlink requests an egress jail needs, sent straight to the kernel: what `ip link add
/// NAME type veth peer name eth0 netns PID`, `ip addr add`, `ip link set NAME up` and `ip link del`
/// do, without a process per jail (the pool thread makes one pair per parked jail). One socket per
/// call, so callers on any thread share nothing.
enum RouteNetlink {
    typealias Failure = Netlink.Failure

    // linux/rtnetlink.h, linux/netlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h
    private static let newLink: UInt16 = 16, deleteLink: UInt16 = 17, newAddress: UInt16 = 20
    private static let acknowledge: UInt16 = 0x4, exclusive: UInt16 = 0x200, create: UInt16 = 0x400
    private static let interfaceName: UInt16 = 3, linkInfo: UInt16 = 18, namespacePID: UInt16 = 19
    private static let infoKind: UInt16 = 1, infoData: UInt16 = 2, vethPeer: UInt16 = 1
    private static let addressLocal: UInt16 = 2, addressAddress: UInt16 = 1

    /// A veth pair: `host` here, `peer` created inside the network namespace of `pid`.
    static func addVeth(host: String, peer: String, peerNamespacePID pid: pid_t) throws(Failure) {
        var peerInfo = NetlinkMessage.interfaceInfo()
        peerInfo.attribute(interfaceName, string: peer)
        peerInfo.attribute(namespacePID, UInt32(bitPattern: pid))
        var data = NetlinkMessage()
        data.attribute(vethPeer, bytes: peerInfo.bytes)
        var info = NetlinkMessage()
        info.attribute(infoKind, string: "veth")
        info.attribute(infoData, bytes: data.bytes)
        var body = NetlinkMessage.interfaceInfo()
        body.attribute(interfaceName, string: host)
        body.attribute(linkInfo, bytes: info.bytes)
        try send(newLink, flags: create | exclusive, body.bytes, what: "create veth pair \(host)")
    }

    /// `address`/`prefixLength` (host byte order) on interface `index`.
    static func addAddress(index: UInt32, address: UInt32, prefixLength: Int) throws(Failure) {
        var body = NetlinkMessage()
        body.bytes += [UInt8(AF_INET), UInt8(prefixLength), 0, 0]
        body.append(index)
        let raw = withUnsafeBytes(of: address.bigEndian) { Array($0) }
        body.attribute(addressLocal, bytes: raw)
        body.attribute(addressAddress, bytes: raw)
        try send(newAddress, flags: create | exclusive, body.bytes, what: "address of interface \(index)")
    }

    static func setUp(index: UInt32) throws(Failure) {
        let up = UInt32(IFF_UP)
        try send(newLink, flags: 0, NetlinkMessage.interfaceInfo(index: index, flags: up, change: up).bytes, what: "link up of interface \(index)")
    }

    /// Removes interface `name` (and its peer); nothing if it is gone already.
    static func delete(_ name: String) throws(Failure) {
        var body = NetlinkMessage.interfaceInfo()
        body.attribute(interfaceName, string: name)
        do {
            try send(deleteLink, flags: 0, body.bytes, what: "delete \(name)")
        } catch where error.errno == ENODEV {
            return
        }
    }

    private static func send(_ type: UInt16, flags: UInt16, _ body: [UInt8], what: String) throws(Failure) {
        let reply = try Netlink.request(protocol: 0, type: type, flags: acknowledge | flags, body: body, what: what)
        guard reply.type == Netlink.errorMessage else { throw Failure(what: "\(what): unexpected reply \(reply.type)", errno: EPROTO) }
    }
}
