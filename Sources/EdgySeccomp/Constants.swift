/// Address families a policy may name in `socket_families` (values from <sys/socket.h>).
struct SocketFamily: Sendable, Hashable {
    let name: String
    let value: UInt64

    static let known: [SocketFamily] = [
        SocketFamily(name: "unix", value: 1),  // AF_UNIX
        SocketFamily(name: "inet", value: 2),  // AF_INET
        SocketFamily(name: "inet6", value: 10),  // AF_INET6
        SocketFamily(name: "netlink", value: 16),  // AF_NETLINK
        SocketFamily(name: "packet", value: 17),  // AF_PACKET
    ]

    static func named(_ name: String) -> SocketFamily? { known.first { $0.name == name.lowercased() } }
}

/// ioctl request numbers a policy may name in `ioctl_deny` (values from <asm-generic/ioctls.h>).
enum IoctlRequest {
    static let known: [String: UInt32] = [
        "TIOCSTI": 0x5412,  // push a byte into a terminal's input: the classic sandbox escape
        "TIOCLINUX": 0x541C,  // virtual console tricks, including selection paste
        "TIOCCONS": 0x541D,  // redirect the console
        "TIOCSCTTY": 0x540E,  // acquire a controlling terminal
        "TIOCSETD": 0x5423,  // change line discipline (loads ldisc modules)
    ]

    /// A known name, or a decimal or `0x` hexadecimal number.
    static func value(_ entry: String) -> UInt32? {
        if let known = known[entry.uppercased()] { return known }
        if entry.lowercased().hasPrefix("0x") { return UInt32(entry.dropFirst(2), radix: 16) }
        return UInt32(entry)
    }
}

/// clone(2) flags that create namespaces (<linux/sched.h>).
enum CloneFlags {
    static let newNS: UInt64 = 0x0002_0000
    static let newCgroup: UInt64 = 0x0200_0000
    static let newUTS: UInt64 = 0x0400_0000
    static let newIPC: UInt64 = 0x0800_0000
    static let newUser: UInt64 = 0x1000_0000
    static let newPID: UInt64 = 0x2000_0000
    static let newNet: UInt64 = 0x4000_0000
    static let namespaces: UInt64 = newNS | newCgroup | newUTS | newIPC | newUser | newPID | newNet
}
