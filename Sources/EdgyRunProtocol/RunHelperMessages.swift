/// The messages between `edgy`'s C front end (Sources/edgy-front/main.c) and `edgy helper`: one
/// SOCK_SEQPACKET connection per `edgy run`, one request and one reply.
///
/// The request is the magic `EDGYRUN1`, then each argument after `run`, NUL-terminated, in at most
/// `maxBytes`. Attached (SCM_RIGHTS): the client's working directory and its fds 1 and 2.
public enum RunHelperRequest {
    public static let magic: [UInt8] = Array("EDGYRUN1".utf8)
    /// The largest request either side sends or reads (the front end hands larger ones to the CLI).
    public static let maxBytes = 65536
    /// Arguments beyond this many are refused, whatever their size.
    public static let maxArguments = 4096

    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public let description: String

        public init(description: String) { self.description = description }
    }

    /// The arguments after `run`, decoded as `CommandLine.arguments` decodes its own (invalid UTF-8
    /// repaired).
    public static func decode(_ bytes: some Collection<UInt8>) throws(Malformed) -> [String] {
        guard bytes.count <= maxBytes else { throw Malformed(description: "a request of \(bytes.count) bytes (at most \(maxBytes))") }
        let bytes = Array(bytes)
        guard bytes.starts(with: magic) else { throw Malformed(description: "no EDGYRUN1 magic") }
        var arguments: [String] = []
        var start = magic.count
        while start < bytes.count {
            guard let end = bytes[start...].firstIndex(of: 0) else {
                throw Malformed(description: "an argument without its terminating NUL")
            }
            guard arguments.count < maxArguments else { throw Malformed(description: "more than \(maxArguments) arguments") }
            arguments.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end + 1
        }
        return arguments
    }

    /// The request for `arguments` (what the front end sends; for tests), or nil past `maxBytes`.
    public static func encode(_ arguments: [String]) -> [UInt8]? {
        var bytes = magic
        for argument in arguments {
            bytes += argument.utf8
            bytes.append(0)
        }
        return bytes.count <= maxBytes ? bytes : nil
    }
}

/// The helper's answer: `F` (the front end runs the command through the CLI itself), or `S` and the
/// run's exit status, 4 bytes little-endian.
public enum RunHelperReply: Equatable, Sendable {
    case declined
    case exited(Int32)

    public var bytes: [UInt8] {
        switch self {
        case .declined: return [UInt8(ascii: "F")]
        case .exited(let status):
            let value = UInt32(bitPattern: status)
            return [UInt8(ascii: "S"), UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24)]
        }
    }

    /// The reply in `bytes`, or nil when they are not one (for tests).
    public init?(_ bytes: [UInt8]) {
        if bytes == [UInt8(ascii: "F")] {
            self = .declined
        } else if bytes.count == 5 && bytes[0] == UInt8(ascii: "S") {
            let value = UInt32(bytes[1]) | UInt32(bytes[2]) << 8 | UInt32(bytes[3]) << 16 | UInt32(bytes[4]) << 24
            self = .exited(Int32(bitPattern: value))
        } else {
            return nil
        }
    }
}
