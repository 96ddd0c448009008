import EdgyPolicy

/// Why a policy's `[seccomp]` table could not be compiled. Names the offending entry.
public struct SeccompError: Error, Sendable, Hashable, CustomStringConvertible {
    enum Code: Sendable, Hashable {
        case unknownSyscall(String)
        case unsupportedSyscall(String)
        case unknownSocketFamily(String)
        case unknownIoctl(String)
        case invalidErrno(Int32)
        case jailStartDenied(String)
        case libseccomp(stage: String, errno: Int32)
    }

    let code: Code

    /// A name in `allow` or `deny` that is neither a group nor an x86_64 syscall.
    public static func unknownSyscall(_ name: String) -> Self { Self(code: .unknownSyscall(name)) }
    /// An allowed syscall that the kernel has but libseccomp 2.5.4 cannot resolve, so it cannot be allowed.
    public static func unsupportedSyscall(_ name: String) -> Self { Self(code: .unsupportedSyscall(name)) }
    /// A `socket_families` entry other than unix, inet, inet6, netlink, packet.
    public static func unknownSocketFamily(_ name: String) -> Self { Self(code: .unknownSocketFamily(name)) }
    /// An `ioctl_deny` entry that is neither a known request name nor a number.
    public static func unknownIoctl(_ name: String) -> Self { Self(code: .unknownIoctl(name)) }
    /// An `errno:` default action outside 1...4095.
    public static func invalidErrno(_ value: Int32) -> Self { Self(code: .invalidErrno(value)) }
    /// A syscall the jail makes after loading the filter (``PolicyVocabulary/jailStartSyscalls``) is not allowed.
    public static func jailStartDenied(_ name: String) -> Self { Self(code: .jailStartDenied(name)) }
    /// libseccomp itself failed; `stage` is the call, `errno` its negated return value.
    public static func libseccomp(stage: String, errno: Int32) -> Self { Self(code: .libseccomp(stage: stage, errno: errno)) }

    public var description: String {
        switch code {
        case .unknownSyscall(let name): "unknown syscall or group `\(name)`"
        case .unsupportedSyscall(let name): "syscall `\(name)` is not known to libseccomp 2.5.4 and cannot be allowed"
        case .unknownSocketFamily(let name): "unknown socket family `\(name)` (known: \(SocketFamily.known.map(\.name).joined(separator: ", ")))"
        case .unknownIoctl(let name): "unknown ioctl request `\(name)` (use a known name or a number like 0x5412)"
        case .invalidErrno(let value): "errno \(value) is outside 1...4095"
        case .jailStartDenied(let name): "`\(name)` must be allowed: the jail calls it after loading the filter, to start"
        case .libseccomp(let stage, let errno): "libseccomp \(stage) failed with errno \(errno)"
        }
    }
}
