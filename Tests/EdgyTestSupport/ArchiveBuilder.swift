import CEdgyZlib

/// Archives built byte by byte, for tests that need a precise (often hostile) one.
public enum ArchiveBuilder {
    /// One 512-byte ustar header whose fields are the given raw text, with a correct checksum:
    /// a bad field then fails on its own, never on the checksum.
    public static func tarHeader(name: String, size: String, mode: String = "0000644", type: UInt8 = UInt8(ascii: "0")) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (i, byte) in text.utf8.prefix(width).enumerated() { header[offset + i] = byte }
        }
        put(name, at: 0, width: 100)
        put(mode, at: 100, width: 8)
        put("0000000", at: 108, width: 8)
        put("0000000", at: 116, width: 8)
        put(size, at: 124, width: 12)
        put("00000000000", at: 136, width: 12)
        header[156] = type
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for i in 148..<156 { header[i] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(sum, radix: 8).leftPadded(to: 6) + "\0 ", at: 148, width: 8)
        return header
    }

    /// `body` padded to whole 512-byte blocks.
    public static func tarBlocks(_ body: [UInt8]) -> [UInt8] {
        body + [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
    }

    /// Two zero blocks: the end of a tar archive.
    public static let tarEnd = [UInt8](repeating: 0, count: 1024)

    /// A zip whose entries are raw-deflated: `entries` copies of `entrySize` zero bytes compress to
    /// about a thousandth of their size (16 entries of 1 MiB are about 17 KB).
    public static func zerosZip(entries: Int, entrySize: Int) -> [UInt8] {
        let contents = [UInt8](repeating: 0, count: entrySize)
        let packed = deflateRaw(contents)
        let crc = UInt32(truncatingIfNeeded: contents.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
        var local: [UInt8] = []
        var central: [UInt8] = []
        for i in 0..<entries {
            let name = Array("zeros\(i).bin".utf8)
            let offset = local.count
            local += le32(0x0403_4b50) + le16(20) + le16(0) + le16(8) + le16(0) + le16(0) + le32(crc)
            local += le32(packed.count) + le32(entrySize) + le16(name.count) + le16(0) + name + packed
            central += le32(0x0201_4b50) + le16(3 << 8 | 20) + le16(20) + le16(0) + le16(8) + le16(0) + le16(0) + le32(crc)
            central += le32(packed.count) + le32(entrySize) + le16(name.count) + le16(0) + le16(0) + le16(0) + le16(0)
            central += le32(0o100644 << 16) + le32(offset) + name
        }
        let end = le32(0x0605_4b50) + le16(0) + le16(0) + le16(entries) + le16(entries) + le32(central.count) + le32(local.count) + le16(0)
        return local + central + end
    }

    private static func deflateRaw(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        precondition(deflateInit2_(&stream, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))))
        var input = input
        let produced = input.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf -> Int in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<produced])
    }

    private static func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
    private static func le32(_ value: Int) -> [UInt8] { le16(value & 0xFFFF) + le16(value >> 16 & 0xFFFF) }
    private static func le32(_ value: UInt32) -> [UInt8] { le32(Int(value)) }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
