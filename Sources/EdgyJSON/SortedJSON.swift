import Foundation

/// Encodes a value as Foundation's `JSONEncoder` does with `[.sortedKeys, .withoutEscapingSlashes]`
/// and its default strategies, byte for byte, in one pass and without building a tree first.
///
/// Why: every task answer and attempt report is encoded this way, and `JSONEncoder` (which boxes
/// each value into a tree, then writes the tree) was 5% of edgyd's CPU under `?wait` load. This
/// takes a third of its time for a report, half for one with a hundred output files. The bytes
/// must stay identical, since stored reports are written into answers as they are and an answer's
/// bytes are the same for equal values; `SortedJSONTests` checks them against `JSONEncoder` for
/// generated values.
///
/// What it does not write itself (a `nestedContainer`, a `superEncoder`, a value that opens no
/// container, a key written twice, `URL` and `Decimal`, which `JSONEncoder` special-cases) it
/// hands, whole, to `JSONEncoder`: the answer is the same, only slower. It keeps no coding path
/// (`codingPath` is always empty), so a type whose encoding read its path would differ; none
/// of Edgy's does.
public enum SortedJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = Sink()
        sink.out.reserveCapacity(1024)
        do {
            try sink.write(value)
            if !sink.unsupported { return sink.out }
        } catch is Unsupported {}
        return Array(try fallbackEncoder().encode(value))
    }

    /// The encoder this one imitates.
    public static func fallbackEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    struct Unsupported: Error {}
}

/// The output, and whether some value used a feature this encoder leaves to `JSONEncoder`.
final class Sink {
    // Unchecked: one encode runs on one thread, and the dynamic checks were a tenth of its time.
    @exclusivity(unchecked) var out: [UInt8] = []
    @exclusivity(unchecked) var unsupported = false
    /// Where an object's members wait while they are put in order.
    @exclusivity(unchecked) var scratch: [UInt8] = []

    func write<T: Encodable>(_ value: T) throws {
        // Exact types only, as JSONEncoder special-cases them. (A Date encodes itself as a number,
        // which is JSONEncoder's default strategy.)
        if T.self == String.self {
            writeString(value as! String)
        } else if T.self == Data.self {
            writeString((value as! Data).base64EncodedString())
        } else if T.self == URL.self || T.self == Decimal.self {
            throw SortedJSON.Unsupported()
        } else {
            let encoder = ValueEncoder(sink: self)
            try value.encode(to: encoder)
            try encoder.finish()
        }
    }

    static let trueBytes = Array("true".utf8)
    static let falseBytes = Array("false".utf8)
    static let nullBytes = Array("null".utf8)
    private static let hex = Array("0123456789abcdef".utf8)

    func writeInteger<I: BinaryInteger>(_ value: I) {
        // Every integer type JSON sees fits in 64 bits and a sign.
        guard let magnitude = UInt64(exactly: value.magnitude) else {
            out += String(value).utf8
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        writeDigits(magnitude)
    }

    private func writeDigits(_ value: UInt64) {
        if value >= 10 { writeDigits(value / 10) }
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// `JSONEncoder`: the number's `description`, less a trailing `.0`; NaN and infinities throw.
    func writeFloat<F: BinaryFloatingPoint & CustomStringConvertible>(_ value: F) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Unable to encode \(value) directly in JSON."))
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        out += text.utf8
    }

    /// Quotes and escapes as `JSONEncoder` does: `"` and `\`, the short escapes `\b \t \n \f \r`,
    /// other control characters as `\u00xx`; everything else (slashes, non-ASCII) as it is.
    func writeString(_ value: String) {
        out.append(UInt8(ascii: "\""))
        // Scanned in place, not byte by byte through an iterator (a no-op for native strings).
        var value = value
        value.makeContiguousUTF8()
        _ = value.utf8.withContiguousStorageIfAvailable { appendEscaped($0) }
        out.append(UInt8(ascii: "\""))
    }

    private func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>) {
        var plainFrom = 0
        for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            out += UnsafeBufferPointer(rebasing: bytes[plainFrom..<index])
            plainFrom = index + 1
            out.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            default: out += [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Self.hex[Int(byte >> 4)], Self.hex[Int(byte & 0xF)]]
            }
        }
        out += UnsafeBufferPointer(rebasing: bytes[plainFrom...])
    }
}

/// The encoder of one value that is neither a string, a number nor a Boolean: it opens one
/// container, which writes into the sink as it goes; `finish()` closes it and puts an object's
/// members in key order.
final class ValueEncoder: Encoder {
    let sink: Sink
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    enum Shape {
        case none
        case object
        case array
        /// One value; `written` once it is.
        case single(written: Bool)
    }

    @exclusivity(unchecked) var shape = Shape.none
    /// An object's opening brace in the sink.
    @exclusivity(unchecked) var start = 0
    /// An object's members as written: each key and the byte range of `"key":value` in the sink.
    @exclusivity(unchecked) var members: [Member] = []
    @exclusivity(unchecked) var count = 0

    struct Member {
        /// The key's first eight UTF-8 bytes, big-endian (zero-padded): most keys are ordered by it alone.
        var prefix: UInt64
        var key: String
        var range: Range<Int>
        /// ASCII keys are equal as Swift strings only when their bytes are.
        var isASCII: Bool

        init(key: String, range: Range<Int>) {
            var prefix: UInt64 = 0
            var isASCII = true
            let contiguous: Void? = key.utf8.withContiguousStorageIfAvailable { bytes in
                for index in 0..<min(8, bytes.count) { prefix |= UInt64(bytes[index]) << (56 - 8 * index) }
                isASCII = bytes.allSatisfy { $0 < 0x80 }
            }
            if contiguous == nil {
                for (index, byte) in key.utf8.prefix(8).enumerated() { prefix |= UInt64(byte) << (56 - 8 * index) }
                isASCII = key.utf8.allSatisfy { $0 < 0x80 }
            }
            self.prefix = prefix
            self.isASCII = isASCII
            self.key = key
            self.range = range
        }

        /// `JSONEncoder`'s key order: the keys' UTF-8 bytes, compared as bytes.
        func precedes(_ other: Member) -> Bool {
            if prefix != other.prefix { return prefix < other.prefix }
            return key.utf8.lexicographicallyPrecedes(other.key.utf8)
        }
    }

    init(sink: Sink) {
        self.sink = sink
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        switch shape {
        case .none:
            shape = .object
            start = sink.out.count
            members.reserveCapacity(8)
            sink.out.append(UInt8(ascii: "{"))
        case .object: break
        case .array, .single: sink.unsupported = true
        }
        return KeyedEncodingContainer(ObjectContainer(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        switch shape {
        case .none:
            shape = .array
            sink.out.append(UInt8(ascii: "["))
        case .array: break
        case .object, .single: sink.unsupported = true
        }
        return ArrayContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        switch shape {
        case .none: shape = .single(written: false)
        case .object, .array, .single: sink.unsupported = true
        }
        return SingleContainer(encoder: self)
    }

    /// Writes one member: the key, then the value straight after it.
    func member(_ key: String, _ write: () throws -> Void) rethrows {
        guard case .object = shape else {
            sink.unsupported = true
            return
        }
        if !members.isEmpty { sink.out.append(UInt8(ascii: ",")) }
        let from = sink.out.count
        sink.writeString(key)
        sink.out.append(UInt8(ascii: ":"))
        try write()
        members.append(Member(key: key, range: from..<sink.out.count))
    }

    func element(_ write: () throws -> Void) rethrows {
        guard case .array = shape else {
            sink.unsupported = true
            return
        }
        if count > 0 { sink.out.append(UInt8(ascii: ",")) }
        try write()
        count += 1
    }

    /// One value; a second one through the same container is left to JSONEncoder.
    func single(_ write: () throws -> Void) rethrows {
        guard case .single(written: false) = shape else {
            sink.unsupported = true
            return
        }
        try write()
        shape = .single(written: true)
    }

    func finish() throws {
        switch shape {
        case .none, .single(written: false): throw SortedJSON.Unsupported()
        case .single: break
        case .array: sink.out.append(UInt8(ascii: "]"))
        case .object:
            // Keys equal as Swift strings but not in bytes (é composed and decomposed) need not be neighbours.
            if members.count > 1 && members.contains(where: { !$0.isASCII }) && Set(members.lazy.map(\.key)).count < members.count {
                throw SortedJSON.Unsupported()
            }
            if members.count > 1 && !isSorted(members) {
                let sorted = members.sorted { $0.precedes($1) }
                for index in sorted.indices.dropFirst() where sorted[index].key == sorted[index - 1].key { throw SortedJSON.Unsupported() }
                // The members keep their lengths, so they are copied back in place, in order.
                let first = start + 1
                sink.scratch.removeAll(keepingCapacity: true)
                sink.scratch += sink.out[first...]
                sink.scratch.withUnsafeBufferPointer { written in
                    sink.out.withUnsafeMutableBufferPointer { out in
                        var to = first
                        for (index, member) in sorted.enumerated() {
                            if index > 0 {
                                out[to] = UInt8(ascii: ",")
                                to += 1
                            }
                            (out.baseAddress! + to).update(from: written.baseAddress! + (member.range.lowerBound - first), count: member.range.count)
                            to += member.range.count
                        }
                    }
                }
            }
            sink.out.append(UInt8(ascii: "}"))
        }
    }

    /// In key order. A key twice (equal as Swift strings, as JSONEncoder's dictionary of members
    /// compares them, and which keeps the last) is left to JSONEncoder.
    private func isSorted(_ members: [Member]) -> Bool {
        for index in members.indices.dropFirst() {
            let previous = members[index - 1], member = members[index]
            if previous.key == member.key { sink.unsupported = true }
            if !previous.precedes(member) { return false }
        }
        return true
    }
}

struct ObjectContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws {
        encoder.member(key.stringValue) { encoder.sink.out += Sink.nullBytes }
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        encoder.member(key.stringValue) { encoder.sink.out += value ? Sink.trueBytes : Sink.falseBytes }
    }

    mutating func encode(_ value: String, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeString(value) } }
    mutating func encode(_ value: Double, forKey key: Key) throws { try encoder.member(key.stringValue) { try encoder.sink.writeFloat(value) } }
    mutating func encode(_ value: Float, forKey key: Key) throws { try encoder.member(key.stringValue) { try encoder.sink.writeFloat(value) } }
    mutating func encode(_ value: Int, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int8, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int16, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int32, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int64, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { encoder.member(key.stringValue) { encoder.sink.writeInteger(value) } }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encoder.member(key.stringValue) { try encoder.sink.write(value) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        encoder.sink.unsupported = true
        return KeyedEncodingContainer(ObjectContainer<NestedKey>(encoder: ValueEncoder(sink: Sink())))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        encoder.sink.unsupported = true
        return ArrayContainer(encoder: ValueEncoder(sink: Sink()))
    }

    mutating func superEncoder() -> any Encoder {
        encoder.sink.unsupported = true
        return ValueEncoder(sink: Sink())
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.sink.unsupported = true
        return ValueEncoder(sink: Sink())
    }
}

/// The primitive writes an array and a single value share: each is one value, written through
/// `put` (an array's next element, or the single value).
protocol ValueSlot {
    var encoder: ValueEncoder { get }
    func put(_ write: () throws -> Void) rethrows
}

extension ValueSlot {
    mutating func encodeNil() throws { put { encoder.sink.out += Sink.nullBytes } }
    mutating func encode(_ value: Bool) throws { put { encoder.sink.out += value ? Sink.trueBytes : Sink.falseBytes } }
    mutating func encode(_ value: String) throws { put { encoder.sink.writeString(value) } }
    mutating func encode(_ value: Double) throws { try put { try encoder.sink.writeFloat(value) } }
    mutating func encode(_ value: Float) throws { try put { try encoder.sink.writeFloat(value) } }
    mutating func encode(_ value: Int) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int8) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int16) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int32) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: Int64) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt8) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt16) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt32) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode(_ value: UInt64) throws { put { encoder.sink.writeInteger(value) } }
    mutating func encode<T: Encodable>(_ value: T) throws { try put { try encoder.sink.write(value) } }
}

struct ArrayContainer: UnkeyedEncodingContainer, ValueSlot {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { [] }
    var count: Int { encoder.count }

    func put(_ write: () throws -> Void) rethrows { try encoder.element(write) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        encoder.sink.unsupported = true
        return KeyedEncodingContainer(ObjectContainer<NestedKey>(encoder: ValueEncoder(sink: Sink())))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        encoder.sink.unsupported = true
        return ArrayContainer(encoder: ValueEncoder(sink: Sink()))
    }

    mutating func superEncoder() -> any Encoder {
        encoder.sink.unsupported = true
        return ValueEncoder(sink: Sink())
    }
}

struct SingleContainer: SingleValueEncodingContainer, ValueSlot {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { [] }

    func put(_ write: () throws -> Void) rethrows { try encoder.single(write) }
}
