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
}
