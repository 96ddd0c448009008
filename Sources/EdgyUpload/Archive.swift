import Foundation

/// Caps on one archive upload.
public struct ArchiveLimits: Sendable {
    /// Entries of any kind (files and directories).
    public var maxEntries: Int
    /// Unpacked bytes of all files.
    public var maxBytes: Int
    /// Unpacked / packed; checked past `ratioFloorBytes` of output so tiny well-compressed files pass.
    public var maxRatio: Int
    public var ratioFloorBytes: Int

    public init(maxEntries: Int, maxBytes: Int, maxRatio: Int, ratioFloorBytes: Int = 1 << 20) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.maxRatio = maxRatio
        self.ratioFloorBytes = ratioFloorBytes
    }
}

/// A file unpacked from an archive.
public struct ArchiveEntry: Sendable, Hashable {
    public var path: String
    public var contents: [UInt8]
    public var mode: UInt32
}

/// Why an archive is refused. `entry` names the entry at fault, when there is one.
public struct ArchiveError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable { case invalid, tooLarge }
    public var kind: Kind
    public var entry: String?
    public var message: String

    public static func invalid(_ message: String, entry: String? = nil) -> ArchiveError { ArchiveError(kind: .invalid, entry: entry, message: message) }
    public static func tooLarge(_ message: String, entry: String? = nil) -> ArchiveError { ArchiveError(kind: .tooLarge, entry: entry, message: message) }

    public var description: String { "\(kind): \(message)" + (entry.map { " (entry \($0))" } ?? "") }
}

/// `.tar`, `.tar.gz`/`.tgz` and `.zip` readers that unpack into memory. Only regular files and
/// directories are accepted; symlinks, hard links, devices and FIFOs are refused, as are absolute
/// paths and `..`. Modes keep only the executable bit (0755 or 0644).
///
/// Every file's bytes are charged to the request's `UploadBudget` before they are produced, and
/// compressed data is never inflated past what the budget has left.
public enum Archive {
    public enum Format: String, Sendable { case tar, tarGzip = "tar.gz", zip }

    /// The archive format a file name asks for, by extension.
    public static func format(ofFilename name: String) -> Format? {
        let lower = name.lowercased()
        if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") { return .tarGzip }
        if lower.hasSuffix(".tar") { return .tar }
        if lower.hasSuffix(".zip") { return .zip }
        return nil
    }

    public static func unpack(_ data: [UInt8], format: Format, limits: ArchiveLimits, budget: inout UploadBudget) throws(ArchiveError) -> [ArchiveEntry] {
        switch format {
        case .tar:
            return try readTar(data[...], limits: limits, budget: &budget)
        case .tarGzip:
            let tar = try gunzipTar(data, limits: limits, budget: budget)
            return try readTar(tar[...], limits: limits, budget: &budget)
        case .zip:
            return try readZip(data, limits: limits, budget: &budget)
        }
    }

    /// The inflated tar stream: at most the file bytes the archive and the budget allow, plus room
    /// for one header and one extended header per entry and the end blocks.
    private static func gunzipTar(_ data: [UInt8], limits: ArchiveLimits, budget: UploadBudget) throws(ArchiveError) -> [UInt8] {
        let fileBytes = min(limits.maxBytes, budget.remaining)
        let headerRoom = (min(limits.maxEntries, 1 << 16) + 3) * 1024
        let tar: [UInt8]
        do throws(Inflate.Failure) {
            tar = try Inflate.decompress(data[...], format: .gzip, maxOutput: fileBytes + headerRoom)
        } catch {
            switch error {
            case .tooLarge: throw .tooLarge(budget.remaining < limits.maxBytes ? budget.exhausted : "the unpacked archive is larger than \(limits.maxBytes) bytes")
            case .corrupt(let why): throw .invalid("not a valid gzip stream: \(why)")
            }
        }
        if tar.count > limits.ratioFloorBytes, tar.count / max(data.count, 1) > limits.maxRatio {
            throw .tooLarge("compression ratio above \(limits.maxRatio)")
        }
        return tar
    }

    /// Checks and normalizes an entry path: relative, no `..`, `.` or empty components, no NUL
    /// or backslash, at most 255 bytes a component and 1024 in all. A leading `./` is dropped.
    public static func safePath(_ raw: String) -> String? {
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

    static func normalizedMode(_ mode: UInt32) -> UInt32 { mode & 0o111 != 0 ? 0o755 : 0o644 }

    // MARK: tar (ustar, with pax `path` and GNU long names)

    private static func readTar(_ data: ArraySlice<UInt8>, limits: ArchiveLimits, budget: inout UploadBudget) throws(ArchiveError) -> [ArchiveEntry] {
        var entries: [ArchiveEntry] = []
        var seen = 0
        var total = 0
        var offset = data.startIndex
        var longName: String?
        while data.endIndex - offset >= 512 {
            let header = data[offset..<offset + 512]
            if header.allSatisfy({ $0 == 0 }) { return entries }  // end-of-archive block
            guard verifyChecksum(header) else { throw .invalid("tar header at byte \(offset - data.startIndex) has a bad checksum") }
            let type = header[header.startIndex + 156]
            var name = string(header, 0, 100)
            if string(header, 257, 6).hasPrefix("ustar") {
                let prefix = string(header, 345, 155)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            if let override = longName {
                name = override
                longName = nil
            }
            guard let size = octal(header, 124, 12) else { throw .invalid("tar entry \(name) has a bad size field", entry: name) }
            let dataStart = offset + 512
            guard size <= data.endIndex - dataStart else { throw .invalid("tar entry \(name) is truncated", entry: name) }
            let body = data[dataStart..<dataStart + size]
            // Padding to the next block: past the end when it is missing, which fails the check below.
            offset = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"):  // pax header for the next entry
                longName = try paxPath(body, entry: name) ?? longName
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
                guard let mode = octal(header, 100, 8) else { throw .invalid("tar entry \(name) has a bad mode field", entry: name) }
                total += size
                guard total <= limits.maxBytes else { throw .tooLarge("the unpacked archive is larger than \(limits.maxBytes) bytes", entry: name) }
                guard budget.charge(size) else { throw .tooLarge(budget.exhausted, entry: name) }
                entries.append(ArchiveEntry(path: path, contents: Array(body), mode: normalizedMode(UInt32(truncatingIfNeeded: mode))))
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

    /// An octal header field: digits 0-7 only, padded by spaces or NULs; nil for anything else
    /// (a sign, base-256 binary, other characters). At most 12 digits, so it never overflows.
    static func octal(_ block: ArraySlice<UInt8>, _ at: Int, _ length: Int) -> Int? {
        let field = block[block.startIndex + at..<block.startIndex + at + length]
        var value = 0
        var digits = 0
        var ended = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard !ended else { return nil }  // digits after the padding
                value = value << 3 | Int(byte - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: " ") where digits == 0:
                continue  // leading padding
            case UInt8(ascii: " "), 0:
                ended = true
            default:
                return nil
            }
        }
        return value
    }

    private static func verifyChecksum(_ header: ArraySlice<UInt8>) -> Bool {
        guard let stored = octal(header, 148, 8) else { return false }
        var sum = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        return sum == stored
    }

    /// The `path` record of a pax extended header (`"%d path=%s\n"` records, the length counting
    /// the whole record).
    /// - Throws: `.invalid` for a record whose length is not a number or does not fit.
    static func paxPath(_ body: ArraySlice<UInt8>, entry: String) throws(ArchiveError) -> String? {
        var rest = body
        var path: String?
        while let first = rest.first, first != 0 {
            let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            let space = digits.endIndex
            guard !digits.isEmpty, digits.count <= 9, space < rest.endIndex, rest[space] == UInt8(ascii: " "),
                  let length = Int(String(decoding: digits, as: UTF8.self)),
                  length > digits.count + 1, length <= rest.count
            else { throw .invalid("tar entry \(entry) has a malformed pax record", entry: entry) }
            let text = String(decoding: rest[(space + 1)..<(rest.startIndex + length)], as: UTF8.self)
            if text.hasPrefix("path=") { path = String(text.dropFirst(5).dropLast(text.hasSuffix("\n") ? 1 : 0)) }
            rest = rest[(rest.startIndex + length)...]
        }
        return path
    }
}
