/// An address family a policy may name in `[seccomp] socket_families` (values from
/// <sys/socket.h>). The policy checker accepts exactly these names and the seccomp compiler
/// translates exactly these, so a family that passes `edgy policy check` always compiles.
public struct SocketFamily: Sendable, Hashable {
    public let name: String
    public let value: UInt64

    public static let known: [SocketFamily] = [
        SocketFamily(name: "unix", value: 1),  // AF_UNIX
        SocketFamily(name: "inet", value: 2),  // AF_INET
        SocketFamily(name: "inet6", value: 10),  // AF_INET6
        SocketFamily(name: "netlink", value: 16),  // AF_NETLINK
        SocketFamily(name: "packet", value: 17),  // AF_PACKET
    ]

    public static func named(_ name: String) -> SocketFamily? { known.first { $0.name == name.lowercased() } }
}

/// ioctl requests a policy may name in `[seccomp] ioctl_deny` (values from
/// <asm-generic/ioctls.h>), or give as a number. Checker and compiler share this table.
public enum IoctlRequest {
    public static let known: [String: UInt32] = [
        "TIOCSTI": 0x5412,  // push a byte into a terminal's input: the classic sandbox escape
        "TIOCLINUX": 0x541C,  // virtual console tricks, including selection paste
        "TIOCCONS": 0x541D,  // redirect the console
        "TIOCSCTTY": 0x540E,  // acquire a controlling terminal
        "TIOCSETD": 0x5423,  // change line discipline (loads ldisc modules)
    ]

    /// A known name, or a decimal or `0x` hexadecimal number.
    public static func value(_ entry: String) -> UInt32? {
        if let known = known[entry.uppercased()] { return known }
        if entry.lowercased().hasPrefix("0x") { return UInt32(entry.dropFirst(2), radix: 16) }
        return UInt32(entry)
    }
}
