import Glibc

/// Decoders of what a learning run reads out of a workload: the socket address a connect(2) or
/// sendto(2) names, the ELF interpreter of an executable, a path as the syscall gave it. Every
/// byte comes from the (hostile) workload, so each decoder is bounded by its input and fuzzed
/// (`scripts/fuzz learning`).
public enum SyscallArguments {
    /// "inet 10.0.0.1:443", "inet6 [::1]:80", "unix /run/x", "unix @abstract"; nil for other
    /// families or a truncated address.
    public static func describe(sockaddr bytes: [UInt8]) -> String? {
        guard bytes.count >= 2 else { return nil }
        let family = Int32(bytes[0]) | Int32(bytes[1]) << 8
        switch family {
        case AF_INET where bytes.count >= 8:
            let port = Int(bytes[2]) << 8 | Int(bytes[3])
            return "inet \(bytes[4]).\(bytes[5]).\(bytes[6]).\(bytes[7]):\(port)"
        case AF_INET6 where bytes.count >= 24:
            let port = Int(bytes[2]) << 8 | Int(bytes[3])
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let raw = Array(bytes[8..<24])
            guard inet_ntop(AF_INET6, raw, &text, socklen_t(text.count)) != nil else { return nil }
            return "inet6 [\(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))]:\(port)"
        case AF_UNIX:
            let path = bytes.dropFirst(2)
            if path.first == 0 { return "unix @" + String(decoding: path.dropFirst().prefix { $0 != 0 }, as: UTF8.self) }
            return "unix " + String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
        default:
            return nil
        }
    }

    /// PT_INTERP of a 64-bit little-endian ELF file, read through `read(offset, count)` (which
    /// answers exactly `count` bytes or nil); nil for a static binary, a script or a malformed
    /// header. At most 256 program headers and a path of at most 4096 bytes are read.
    public static func elfInterpreter(read: (UInt64, Int) -> [UInt8]?) -> String? {
        func integer(_ bytes: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
            (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
        }
        guard let header = read(0, 64), header.count == 64, header[0..<4] == [0x7f, 0x45, 0x4c, 0x46], header[4] == 2, header[5] == 1 else {
            return nil
        }
        let tableOffset = integer(header, 0x20, 8), entrySize = Int(integer(header, 0x36, 2)), entries = Int(integer(header, 0x38, 2))
        guard entrySize >= 56, entries <= 256 else { return nil }
        for index in 0..<entries {
            let (at, overflow) = tableOffset.addingReportingOverflow(UInt64(index * entrySize))
            guard !overflow, let entry = read(at, 56), entry.count == 56 else { return nil }
            guard integer(entry, 0, 4) == 3 else { continue }  // PT_INTERP
            let size = integer(entry, 32, 8)
            guard size > 1, size <= 4096, let text = read(integer(entry, 8, 8), Int(size)), text.count == Int(size) else { return nil }
            return String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
        }
        return nil
    }

    /// `path` with `.` and `..` folded and repeated slashes removed, made absolute under `base`
    /// when relative ("/" + components). `..` above the root stays at the root, as the kernel does.
    public static func normalized(_ path: String, base: String = "/") -> String {
        var parts: [Substring] = []
        for part in (path.hasPrefix("/") ? path : base + "/" + path).split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
