/// A DNS query as a jail sends it to edgyd's resolver: one question, read from untrusted bytes
/// with every length checked (the jail's workload writes them).
public struct DNSQuery: Sendable, Equatable {
    public var id: UInt16
    /// The header's flags word, as received (RD is echoed in the answer).
    public var flags: UInt16
    /// Lower case, without the trailing dot; "" for the root.
    public var name: String
    public var type: UInt16
    public var questionClass: UInt16
    /// The question as it was on the wire (name, type, class), echoed in the answer.
    public var question: ArraySlice<UInt8>

    public static let typeA: UInt16 = 1
    public static let typeAAAA: UInt16 = 28
    public static let classIN: UInt16 = 1

    public enum ParseError: Error, Sendable, Equatable {
        /// Shorter than a header, or a question that runs past the end.
        case truncated
        /// A response, or an opcode other than QUERY: not answered at all.
        case notAQuery
        /// Not exactly one question, a compressed or over-long name, a non-ASCII label.
        case malformed
    }

    /// The largest datagram read (EDNS clients send more than 512); longer ones are cut there.
    public static let maxDatagram = 1232

    public static func parse(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> DNSQuery {
        let base = bytes.startIndex
        guard bytes.count >= 12 else { throw .truncated }
        func word(_ at: Int) -> UInt16 { UInt16(bytes[base + at]) << 8 | UInt16(bytes[base + at + 1]) }
        let id = word(0), flags = word(2)
        guard flags & 0x8000 == 0, (flags >> 11) & 0xf == 0 else { throw .notAQuery }
        guard word(4) == 1, word(6) == 0, word(8) == 0 else { throw .malformed }
        var at = base + 12
        var labels: [String] = []
        var length = 0
        while true {
            guard at < bytes.endIndex else { throw .truncated }
            let size = Int(bytes[at])
            at += 1
            if size == 0 { break }
            // 0xC0: a compression pointer, which a question never needs; 0x40/0x80: reserved.
            guard size <= 63 else { throw .malformed }
            guard at + size <= bytes.endIndex else { throw .truncated }
            length += size + 1
            guard length <= 255 else { throw .malformed }
            let label = bytes[at..<(at + size)]
            guard label.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ".") }) else { throw .malformed }
            labels.append(String(decoding: label, as: UTF8.self).lowercased())
            at += size
        }
        guard at + 4 <= bytes.endIndex else { throw .truncated }
        let type = UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
        let questionClass = UInt16(bytes[at + 2]) << 8 | UInt16(bytes[at + 3])
        return DNSQuery(
            id: id, flags: flags, name: labels.joined(separator: "."), type: type, questionClass: questionClass,
            question: bytes[(base + 12)..<(at + 4)])
    }

    public enum ResponseCode: UInt16, Sendable {
        case noError = 0, formatError = 1, serverFailure = 2, nameError = 3, notImplemented = 4, refused = 5
    }

    /// The answer: the question echoed, then one A record per address (host byte order), each
    /// pointing back at the question's name.
    public func response(_ code: ResponseCode, addresses: [UInt32] = [], ttl: UInt32 = 60) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + question.count + addresses.count * 16)
        func put16(_ v: UInt16) { out += [UInt8(v >> 8), UInt8(v & 0xff)] }
        func put32(_ v: UInt32) { out += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        put16(id)
        // QR, AA, RD as asked, RA, and the code.
        put16(0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | code.rawValue)
        put16(1)
        put16(UInt16(min(addresses.count, 32)))
        put16(0)
        put16(0)
        out += question
        for address in addresses.prefix(32) {
            put16(0xC00C)
            put16(Self.typeA)
            put16(Self.classIN)
            put32(ttl)
            put16(4)
            put32(address)
        }
        return out
    }

    /// A query for `name` (for tests and the fuzzer's seeds).
    public static func encode(id: UInt16, name: String, type: UInt16 = typeA) -> [UInt8] {
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            out.append(UInt8(min(label.utf8.count, 255)))
            out += label.utf8
        }
        out += [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
        return out
    }

    /// The A records of a response (for tests): the addresses, host byte order, and the code.
    public static func answers(_ bytes: [UInt8]) -> (code: UInt16, addresses: [UInt32])? {
        guard bytes.count >= 12 else { return nil }
        let code = UInt16(bytes[3] & 0x0f)
        let count = Int(UInt16(bytes[6]) << 8 | UInt16(bytes[7]))
        guard let question = try? parse(ArraySlice(bytes[0..<2] + [0x01, 0x00] + bytes[4..<6] + [0, 0, 0, 0, 0, 0] + bytes[12...])) else { return nil }
        var at = 12 + question.question.count
        var addresses: [UInt32] = []
        for _ in 0..<count {
            guard at + 16 <= bytes.count else { return nil }
            let address = bytes[(at + 12)..<(at + 16)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            addresses.append(address)
            at += 16
        }
        return (code, addresses)
    }
}
