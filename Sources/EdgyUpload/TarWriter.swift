import CEdgyZlib

/// Writes a ustar archive (what `tar` and the upload decoder read), gzipped, for
/// `GET /v1/tasks/{id}/files.tar.gz`. Paths longer than ustar's 100 bytes are split into its
/// 155-byte prefix; a path that fits neither way gets a pax `path` record.
public struct TarWriter: Sendable {
    private var bytes: [UInt8] = []

    public init() {}

    public mutating func add(path: String, contents: [UInt8], mode: UInt32, modifiedAt: Int = 0) {
        let name = Array(path.utf8)
        var header = Self.header(name: name, size: contents.count, mode: mode, type: UInt8(ascii: "0"), modifiedAt: modifiedAt)
        if header == nil {
            // pax extended header: "LEN path=NAME\n", where LEN counts itself.
            let body = Array(" path=".utf8) + name + [UInt8(ascii: "\n")]
            var length = body.count + 1
            while String(length).utf8.count + body.count != length { length = String(length).utf8.count + body.count }
            let record = Array(String(length).utf8) + body
            append(Self.header(name: Array("PaxHeader".utf8), size: record.count, mode: 0o644, type: UInt8(ascii: "x"), modifiedAt: modifiedAt)!, record)
            header = Self.header(name: Array(name.suffix(99)), size: contents.count, mode: mode, type: UInt8(ascii: "0"), modifiedAt: modifiedAt)
        }
        append(header!, contents)
    }

    private mutating func append(_ header: [UInt8], _ contents: [UInt8]) {
        bytes += header
        bytes += contents
        bytes += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    /// The archive: entries, then two zero blocks.
    public func archive() -> [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    /// A 512-byte ustar header, or nil when `name` fits neither the name field nor prefix + name.
    static func header(name: [UInt8], size: Int, mode: UInt32, type: UInt8, modifiedAt: Int) -> [UInt8]? {
        var nameField = name
        var prefix: [UInt8] = []
        if name.count > 100 {
            // Split at a slash so that the prefix has ≤ 155 bytes and the name ≤ 100.
            guard let cut = name.indices.last(where: { name[$0] == UInt8(ascii: "/") && $0 <= 155 && name.count - $0 - 1 <= 100 && name.count - $0 - 1 > 0 }) else {
                return nil
            }
            prefix = Array(name[..<cut])
            nameField = Array(name[(cut + 1)...])
        }
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ field: [UInt8], at offset: Int) { for (i, b) in field.enumerated() { header[offset + i] = b } }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(width - 1 - digits.count, 0)) + digits).utf8)
        }
        put(nameField, at: 0)
        put(octal(Int(mode & 0o7777), width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(max(modifiedAt, 0), width: 12), at: 136)
        put(Array("        ".utf8), at: 148)
        header[156] = type
        put(Array("ustar".utf8) + [0], at: 257)
        put(Array("00".utf8), at: 263)
        put(prefix, at: 345)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(octal(checksum, width: 7) + [0], at: 148)
        return header
    }
}

/// zlib's deflate in gzip framing.
public enum Gzip {
    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return []
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        let produced = input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return 0 }
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return Array(output.prefix(produced))
    }
}
