/// A compiled seccomp filter: the `struct sock_filter` array the child hands to
/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, &sock_fprog)`, exactly as libseccomp exported it.
public struct SeccompProgram: Sendable, Hashable {
    /// `struct sock_filter` instructions in host byte order, 8 bytes each
    /// (`u16 code; u8 jt; u8 jf; u32 k`).
    public let bytes: [UInt8]

    /// The number of BPF instructions (`sock_fprog.len`).
    public var instructionCount: Int { bytes.count / 8 }

    public init(bytes: [UInt8]) {
        precondition(bytes.count % 8 == 0, "a BPF program is a whole number of 8-byte instructions")
        self.bytes = bytes
    }

    /// The same program with every `kill_process` return made a user notification
    /// (`SECCOMP_RET_USER_NOTIF`): loaded with a listener, the supervisor learns the exact syscall
    /// and kills the caller itself. libseccomp only emits constant returns (`BPF_RET|BPF_K`), so
    /// rewriting those is the whole change; nothing else in the program moves.
    public var killsAsNotifications: SeccompProgram { replacingReturns(Self.killProcess, with: Self.userNotification) }

    /// The same program with every kill replaced by `SECCOMP_RET_TRACE`: a process that may not
    /// have a listener, whose forbidden calls a ptrace tracer names before it is killed.
    public var killsAsTraps: SeccompProgram { replacingReturns(Self.killProcess, with: Self.trace) }

    /// The same program with every `SECCOMP_RET_USER_NOTIF` replaced by `SECCOMP_RET_TRACE`: a
    /// learning filter for a process that may not have a listener, observed by a ptrace tracer.
    public var notificationsAsTraps: SeccompProgram { replacingReturns(Self.userNotification, with: Self.trace) }

    private func replacingReturns(_ old: UInt32, with new: UInt32) -> SeccompProgram {
        var rewritten = bytes
        for offset in stride(from: 0, to: rewritten.count, by: 8) {
            let code = UInt16(rewritten[offset]) | UInt16(rewritten[offset + 1]) << 8
            let k = rewritten[offset + 4 ..< offset + 8].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
            guard code == Self.returnConstant, k == old else { continue }
            for byte in 0 ..< 4 { rewritten[offset + 4 + byte] = UInt8(truncatingIfNeeded: new >> (8 * byte)) }
        }
        return SeccompProgram(bytes: rewritten)
    }

    /// `BPF_RET | BPF_K`, and the return values (linux/seccomp.h).
    static let returnConstant: UInt16 = 0x06
    static let killProcess: UInt32 = 0x8000_0000
    static let userNotification: UInt32 = 0x7fc0_0000
    static let trace: UInt32 = 0x7ff0_0000
}
