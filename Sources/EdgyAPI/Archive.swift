import Foundation

/// Caps on one archive upload.
struct ArchiveLimits: Sendable {
    /// Entries of any kind (files and directories).
    var maxEntries: Int
    /// Unpacked bytes of all files.
    var maxBytes: Int
    /// Unpacked / packed; checked past `ratioFloorBytes` of output so tiny well-compressed files pass.
    var maxRatio: Int
    var ratioFloorBytes: Int = 1 << 20
}

/// A file unpacked from an archive.
struct ArchiveEntry: Sendable, Hashable {
    var path: String
    var contents: [UInt8]
    var mode: UInt32
}

/// Why an archive is refused. `entry` names the entry at fault, when there is one.
struct ArchiveError: Error, Sendable, Hashable {
    enum Kind: Sendable, Hashable { case invalid, tooLarge }
    var kind: Kind
    var entry: String?
    var message: String

    static func invalid(_ message: String, entry: String? = nil) -> ArchiveError { ArchiveError(kind: .invalid, entry: entry, message: message) }
    static func tooLarge(_ message: String, entry: String? = nil) -> ArchiveError { ArchiveError(kind: .tooLarge, entry: entry, message: message) }
}

/// `.tar`, `.tar.gz`/`.tgz` and `.zip` readers that unpack into memory. Only regular files and
/// directories are accepted; symlinks, hard links, devices and FIFOs are refused, as are absolute
/// paths and `..`. Modes keep only the executable bit (0755 or 0644).
enum Archive {
    enum Format: String, Sendable { case tar, tarGzip = "tar.gz", zip }

    /// The archive format a file name asks for, by extension.
    static func format(ofFilename name: String) -> Format? {
        let lower = name.lowercased()
        if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") { return .tarGzip }
        if lower.hasSuffix(".tar") { return .tar }
        if lower.hasSuffix(".zip") { return .zip }
        return nil
    }

    static func unpack(_ data: [UInt8], format: Format, limits: ArchiveLimits) throws(ArchiveError) -> [ArchiveEntry] {
        switch format {
        case .tar:
            return try readTar(data[...], limits: limits)
        case .tarGzip:
            let tar: [UInt8]
            do throws(Inflate.Failure) {
                // The tar stream is at most the file bytes plus one header per entry and padding.
                let cap = limits.maxBytes + (limits.maxEntries + 3) * 1024
                tar = try Inflate.decompress(data[...], format: .gzip, maxOutput: cap)
            } catch {
                switch error {
                case .tooLarge: throw .tooLarge("the unpacked archive is larger than \(limits.maxBytes) bytes")
                case .corrupt(let why): throw .invalid("not a valid gzip stream: \(why)")
                }
            }
            if tar.count > limits.ratioFloorBytes, tar.count / max(data.count, 1) > limits.maxRatio {
                throw .tooLarge("compression ratio above \(limits.maxRatio)")
            }
            return try readTar(tar[...], limits: limits)
        case .zip:
            return try readZip(data, limits: limits)
        }
    }

    /// Checks and normalizes an entry path: relative, no `..`, `.` or empty components, no NUL
    /// or backslash, at most 255 bytes a component and 1024 in all. A leading `./` is dropped.
    static func safePath(_ raw: String) -> String? {
        var path = raw
        while path.hasPrefix("./") { path.removeFirst(2) }
        guard !path.isEmpty, path.utf8.count <= 1024, !path.hasPrefix("/"),
              !path.contains("\0"), !path.contains("\\")
        else { return nil }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        for component in components {
            guard !component.isEmpty, component != ".", component != "..", component.utf8.count <= 255 else { return nil }
            guard !component.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return nil }
        }
        return path
    }

    private static func normalizedMode(_ mode: UInt32) -> UInt32 { mode & 0o111 != 0 ? 0o755 : 0o644 }

    // MARK: tar (ustar, with pax `path` and GNU long names)

    private static func readTar(_ data: ArraySlice<UInt8>, limits: ArchiveLimits) throws(ArchiveError) -> [ArchiveEntry] {
        var entries: [ArchiveEntry] = []
        var seen = 0
        var total = 0
        var offset = data.startIndex
        var longName: String?
        while offset + 512 <= data.endIndex {
            let header = data[offset..<offset + 512]
            if header.allSatisfy({ $0 == 0 }) { return entries }  // end-of-archive block
            guard let size = octal(header, 124, 12) else { throw .invalid("tar header at byte \(offset - data.startIndex) has a bad size") }
            guard verifyChecksum(header) else { throw .invalid("tar header at byte \(offset - data.startIndex) has a bad checksum") }
            let type = header[header.startIndex + 156]
            var name = string(header, 0, 100)
            let magic = string(header, 257, 6)
            if magic.hasPrefix("ustar") {
                let prefix = string(header, 345, 155)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            if let override = longName {
                name = override
                longName = nil
            }
            let dataStart = offset + 512
            guard size <= data.endIndex - dataStart else { throw .invalid("tar entry \(name) is truncated", entry: name) }
            let body = data[dataStart..<dataStart + size]
            offset = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"):  // pax header for the next entry
                longName = paxPath(body) ?? longName
                continue
            case UInt8(ascii: "g"):  // pax global header: nothing we use
                continue
            case UInt8(ascii: "L"):  // GNU long name for the next entry
                longName = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                continue
            default:
                break
            }
            seen += 1
            guard seen <= limits.maxEntries else { throw .tooLarge("more than \(limits.maxEntries) archive entries") }
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                guard let path = safePath(name) else { throw .invalid("unsafe path \(name)", entry: name) }
                total += size
                guard total <= limits.maxBytes else { throw .tooLarge("the unpacked archive is larger than \(limits.maxBytes) bytes", entry: name) }
                let mode = octal(header, 100, 8).map(UInt32.init) ?? 0o644
                entries.append(ArchiveEntry(path: path, contents: Array(body), mode: normalizedMode(mode)))
            case UInt8(ascii: "5"):
                let trimmed = name.hasSuffix("/") ? String(name.dropLast()) : name
                guard trimmed == "." || trimmed.isEmpty || safePath(trimmed) != nil else { throw .invalid("unsafe path \(name)", entry: name) }
            case UInt8(ascii: "1"): throw .invalid("hard link \(name) is not allowed", entry: name)
            case UInt8(ascii: "2"): throw .invalid("symbolic link \(name) is not allowed", entry: name)
            case UInt8(ascii: "3"), UInt8(ascii: "4"): throw .invalid("device \(name) is not allowed", entry: name)
            case UInt8(ascii: "6"): throw .invalid("FIFO \(name) is not allowed", entry: name)
            default: throw .invalid("entry \(name) has an unsupported type '\(Character(Unicode.Scalar(type)))'", entry: name)
            }
        }
        guard offset == data.endIndex else { throw .invalid("tar archive is truncated") }
        return entries
    }

    private static func string(_ block: ArraySlice<UInt8>, _ at: Int, _ length: Int) -> String {
        let field = block[block.startIndex + at..<block.startIndex + at + length]
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func octal(_ block: ArraySlice<UInt8>, _ at: Int, _ length: Int) -> Int? {
        let field = block[block.startIndex + at..<block.startIndex + at + length]
        if let first = field.first, first & 0x80 != 0 { return nil }  // base-256: far beyond any cap
        let text = String(decoding: field.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return 0 }
        return Int(text, radix: 8)
    }

    private static func verifyChecksum(_ header: ArraySlice<UInt8>) -> Bool {
        guard let stored = octal(header, 148, 8) else { return false }
        var sum = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        return sum == stored
    }

    /// The `path` record of a pax extended header (`"%d path=%s\n"` records).
    private static func paxPath(_ body: ArraySlice<UInt8>) -> String? {
        var rest = body
        var path: String?
        while !rest.isEmpty {
            guard let space = rest.firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
                  length > 0, length <= rest.count
            else { break }
            let record = rest[space + 1..<rest.startIndex + length]
            let text = String(decoding: record, as: UTF8.self)
            if text.hasPrefix("path=") { path = String(text.dropFirst(5).dropLast(text.hasSuffix("\n") ? 1 : 0)) }
            rest = rest[(rest.startIndex + length)...]
        }
        return path
    }

    // MARK: zip (stored and deflate; no zip64, no encryption)

    private static func readZip(_ data: [UInt8], limits: ArchiveLimits) throws(ArchiveError) -> [ArchiveEntry] {
        func u16(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        guard data.count >= 22 else { throw .invalid("not a zip archive") }
        // The end-of-central-directory record is in the last 22 + 65535 bytes.
        var eocd: Int?
        var at = data.count - 22
        while at >= max(0, data.count - 22 - 65535) {
            if u32(at) == 0x0605_4b50 { eocd = at; break }
            at -= 1
        }
        guard let eocd else { throw .invalid("not a zip archive (no end of central directory)") }
        let count = u16(eocd + 10)
        let directorySize = u32(eocd + 12)
        let directoryOffset = u32(eocd + 16)
        guard count != 0xFFFF, directoryOffset != 0xFFFF_FFFF else { throw .invalid("zip64 archives are not supported") }
        guard directoryOffset + directorySize <= eocd else { throw .invalid("zip central directory is out of bounds") }
        guard count <= limits.maxEntries else { throw .tooLarge("more than \(limits.maxEntries) archive entries") }
        var entries: [ArchiveEntry] = []
        var total = 0
        var cursor = directoryOffset
        for _ in 0..<count {
            guard cursor + 46 <= eocd, u32(cursor) == 0x0201_4b50 else { throw .invalid("zip central directory is corrupt") }
            let madeBy = u16(cursor + 4) >> 8
            let flags = u16(cursor + 8)
            let method = u16(cursor + 10)
            let crc = UInt32(u32(cursor + 16))
            let packedSize = u32(cursor + 20)
            let size = u32(cursor + 24)
            let nameLength = u16(cursor + 28)
            let extraLength = u16(cursor + 30)
            let commentLength = u16(cursor + 32)
            let external = UInt32(u32(cursor + 38))
            let localOffset = u32(cursor + 42)
            guard cursor + 46 + nameLength <= eocd else { throw .invalid("zip central directory is corrupt") }
            let name = String(decoding: data[cursor + 46..<cursor + 46 + nameLength], as: UTF8.self)
            cursor += 46 + nameLength + extraLength + commentLength
            let unixMode = madeBy == 3 ? external >> 16 : 0
            let fileType = unixMode & 0o170000
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
            guard flags & 1 == 0 else { throw .invalid("encrypted entry \(name) is not supported", entry: name) }
            guard packedSize != 0xFFFF_FFFF, size != 0xFFFF_FFFF else { throw .invalid("zip64 entry \(name) is not supported", entry: name) }
            total += size
            guard total <= limits.maxBytes else { throw .tooLarge("the unpacked archive is larger than \(limits.maxBytes) bytes", entry: name) }
            if size > limits.ratioFloorBytes, size / max(packedSize, 1) > limits.maxRatio {
                throw .tooLarge("entry \(name) has a compression ratio above \(limits.maxRatio)", entry: name)
            }
            guard localOffset + 30 <= data.count, u32(localOffset) == 0x0403_4b50 else { throw .invalid("zip entry \(name) has no local header", entry: name) }
            let start = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28)
            guard start + packedSize <= data.count else { throw .invalid("zip entry \(name) is truncated", entry: name) }
            let packed = data[start..<start + packedSize]
            let contents: [UInt8]
            switch method {
            case 0:
                guard packedSize == size else { throw .invalid("stored zip entry \(name) has mismatched sizes", entry: name) }
                contents = Array(packed)
            case 8:
                do throws(Inflate.Failure) {
                    contents = try Inflate.decompress(packed, format: .raw, maxOutput: size)
                } catch {
                    switch error {
                    case .tooLarge: throw .invalid("zip entry \(name) is larger than it declares", entry: name)
                    case .corrupt(let why): throw .invalid("zip entry \(name) is corrupt: \(why)", entry: name)
                    }
                }
            default:
                throw .invalid("zip entry \(name) uses unsupported compression method \(method)", entry: name)
            }
            guard contents.count == size, Inflate.crc32(contents) == crc else { throw .invalid("zip entry \(name) fails its CRC check", entry: name) }
            entries.append(ArchiveEntry(path: path, contents: contents, mode: normalizedMode(unixMode == 0 ? 0o644 : unixMode)))
        }
        return entries
    }
}
