// zip (stored and deflate; no zip64, no encryption). Offsets and sizes come from the client:
// every one is checked against the buffer before it is used.
extension Archive {
    static func readZip(_ data: [UInt8], limits: ArchiveLimits, budget: inout UploadBudget) throws(ArchiveError) -> [ArchiveEntry] {
        guard data.count >= 22 else { throw .invalid("not a zip archive") }
        guard let eocd = endOfCentralDirectory(data) else { throw .invalid("not a zip archive (no end of central directory)") }
        let count = u16(data, eocd + 10)
        let directorySize = u32(data, eocd + 12)
        let directoryOffset = u32(data, eocd + 16)
        guard count != 0xFFFF, directoryOffset != 0xFFFF_FFFF else { throw .invalid("zip64 archives are not supported") }
        guard directoryOffset + directorySize <= eocd else { throw .invalid("zip central directory is out of bounds") }
        guard count <= limits.maxEntries else { throw .tooLarge("more than \(limits.maxEntries) archive entries") }
        var entries: [ArchiveEntry] = []
        var total = 0
        var cursor = directoryOffset
        for _ in 0..<count {
            guard cursor + 46 <= eocd, u32(data, cursor) == 0x0201_4b50 else { throw .invalid("zip central directory is corrupt") }
            let header = CentralHeader(data, at: cursor)
            guard cursor + 46 + header.nameLength <= eocd else { throw .invalid("zip central directory is corrupt") }
            let name = String(decoding: data[cursor + 46..<cursor + 46 + header.nameLength], as: UTF8.self)
            cursor += 46 + header.nameLength + header.extraLength + header.commentLength
            let fileType = header.unixMode & 0o170000
            if fileType == 0o120000 { throw .invalid("symbolic link \(name) is not allowed", entry: name) }
            if fileType != 0, fileType != 0o100000, fileType != 0o040000 {
                throw .invalid("special file \(name) is not allowed", entry: name)
            }
            if name.hasSuffix("/") || fileType == 0o040000 {
                let trimmed = name.hasSuffix("/") ? String(name.dropLast()) : name
                guard safePath(trimmed) != nil else { throw .invalid("unsafe path \(name)", entry: name) }
                continue
            }
            guard let path = safePath(name) else { throw .invalid("unsafe path \(name)", entry: name) }
            guard header.flags & 1 == 0 else { throw .invalid("encrypted entry \(name) is not supported", entry: name) }
            guard header.packedSize != 0xFFFF_FFFF, header.size != 0xFFFF_FFFF else { throw .invalid("zip64 entry \(name) is not supported", entry: name) }
            total += header.size
            guard total <= limits.maxBytes else { throw .tooLarge("the unpacked archive is larger than \(limits.maxBytes) bytes", entry: name) }
            if header.size > limits.ratioFloorBytes, header.size / max(header.packedSize, 1) > limits.maxRatio {
                throw .tooLarge("entry \(name) has a compression ratio above \(limits.maxRatio)", entry: name)
            }
            // Charged before inflating, and inflation stops at the declared size: the budget holds
            // while the bytes are produced, not after.
            guard budget.charge(header.size) else { throw .tooLarge(budget.exhausted, entry: name) }
            let contents = try entryContents(data, header, name: name)
            entries.append(ArchiveEntry(path: path, contents: contents, mode: normalizedMode(header.unixMode == 0 ? 0o644 : header.unixMode)))
        }
        return entries
    }

    /// A central directory file header's fields.
    private struct CentralHeader {
        var flags, method, packedSize, size, nameLength, extraLength, commentLength, localOffset: Int
        var crc: UInt32
        var unixMode: UInt32

        init(_ data: [UInt8], at cursor: Int) {
            let madeBy = Archive.u16(data, cursor + 4) >> 8
            flags = Archive.u16(data, cursor + 8)
            method = Archive.u16(data, cursor + 10)
            crc = UInt32(truncatingIfNeeded: Archive.u32(data, cursor + 16))
            packedSize = Archive.u32(data, cursor + 20)
            size = Archive.u32(data, cursor + 24)
            nameLength = Archive.u16(data, cursor + 28)
            extraLength = Archive.u16(data, cursor + 30)
            commentLength = Archive.u16(data, cursor + 32)
            let external = UInt32(truncatingIfNeeded: Archive.u32(data, cursor + 38))
            localOffset = Archive.u32(data, cursor + 42)
            unixMode = madeBy == 3 ? external >> 16 : 0
        }
    }

    private static func entryContents(_ data: [UInt8], _ header: CentralHeader, name: String) throws(ArchiveError) -> [UInt8] {
        let local = header.localOffset
        guard local <= data.count - 30, u32(data, local) == 0x0403_4b50 else { throw .invalid("zip entry \(name) has no local header", entry: name) }
        let start = local + 30 + u16(data, local + 26) + u16(data, local + 28)
        guard start <= data.count, header.packedSize <= data.count - start else { throw .invalid("zip entry \(name) is truncated", entry: name) }
        let packed = data[start..<start + header.packedSize]
        let contents: [UInt8]
        switch header.method {
        case 0:
            guard header.packedSize == header.size else { throw .invalid("stored zip entry \(name) has mismatched sizes", entry: name) }
            contents = Array(packed)
        case 8:
            do throws(Inflate.Failure) {
                contents = try Inflate.decompress(packed, format: .raw, maxOutput: header.size)
            } catch {
                switch error {
                case .tooLarge: throw .invalid("zip entry \(name) is larger than it declares", entry: name)
                case .corrupt(let why): throw .invalid("zip entry \(name) is corrupt: \(why)", entry: name)
                }
            }
        default:
            throw .invalid("zip entry \(name) uses unsupported compression method \(header.method)", entry: name)
        }
        guard contents.count == header.size, Inflate.crc32(contents) == header.crc else { throw .invalid("zip entry \(name) fails its CRC check", entry: name) }
        return contents
    }

    /// The end-of-central-directory record: in the last 22 + 65535 bytes.
    private static func endOfCentralDirectory(_ data: [UInt8]) -> Int? {
        var at = data.count - 22
        while at >= max(0, data.count - 22 - 65535) {
            if u32(data, at) == 0x0605_4b50 { return at }
            at -= 1
        }
        return nil
    }

    /// Little-endian fields; callers keep `at + 4 <= data.count`.
    fileprivate static func u16(_ data: [UInt8], _ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
    fileprivate static func u32(_ data: [UInt8], _ at: Int) -> Int { u16(data, at) | u16(data, at + 2) << 16 }
}
