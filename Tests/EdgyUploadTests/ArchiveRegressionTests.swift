import EdgyTestSupport
import Testing

@testable import EdgyUpload

/// Inputs that once trapped the tar, gzip or zip readers, and the precise error each now gets.
@Suite struct ArchiveRegressionTests {
    static let limits = ArchiveLimits(maxEntries: 64, maxBytes: 1 << 20, maxRatio: 100)

    func unpack(_ bytes: [UInt8], _ format: Archive.Format = .tar, budget limit: Int = 1 << 20) throws(ArchiveError) -> [ArchiveEntry] {
        var budget = UploadBudget(limit: limit)
        return try Archive.unpack(bytes, format: format, limits: Self.limits, budget: &budget)
    }

    func tar(_ header: [UInt8], body: [UInt8] = []) -> [UInt8] {
        header + ArchiveBuilder.tarBlocks(body) + ArchiveBuilder.tarEnd
    }

    @Test func aWellFormedBuiltTarUnpacks() throws {
        let entries = try unpack(tar(ArchiveBuilder.tarHeader(name: "a.txt", size: "00000000002", mode: "0000755"), body: Array("hi".utf8)))
        #expect(entries == [ArchiveEntry(path: "a.txt", contents: Array("hi".utf8), mode: 0o755)])
    }

    @Test func negativeSizeIsInvalidNamingTheEntry() {
        // Trapped with "Range requires lowerBound <= upperBound" when the size parsed as -1.
        let bytes = tar(ArchiveBuilder.tarHeader(name: "a.txt", size: "-0000000001"))
        #expect(throws: ArchiveError.invalid("tar entry a.txt has a bad size field", entry: "a.txt")) { try unpack(bytes) }
    }

    @Test func negativeModeIsInvalidNamingTheEntry() {
        // Trapped in UInt32.init of a negative Int.
        let bytes = tar(ArchiveBuilder.tarHeader(name: "a.txt", size: "00000000002", mode: "-1"), body: Array("hi".utf8))
        #expect(throws: ArchiveError.invalid("tar entry a.txt has a bad mode field", entry: "a.txt")) { try unpack(bytes) }
    }

    @Test(arguments: ["1 x", "2 x", "0 x", "9999999999 path=a\n", "x path=a\n", "-5 path=a\n", "12path=a\n"])
    func malformedPaxRecordIsInvalid(record: String) {
        // "1 x" trapped slicing the record: its length does not even cover its own digits.
        let body = Array(record.utf8)
        let bytes = ArchiveBuilder.tarHeader(name: "pax", size: String(String(body.count, radix: 8)), type: UInt8(ascii: "x"))
            + ArchiveBuilder.tarBlocks(body) + ArchiveBuilder.tarEnd
        #expect(throws: ArchiveError.invalid("tar entry pax has a malformed pax record", entry: "pax")) { try unpack(bytes) }
    }

    @Test func aValidPaxPathApplies() throws {
        let record = Array("15 path=long/b\n".utf8)
        let pax = ArchiveBuilder.tarHeader(name: "pax", size: String(record.count, radix: 8), type: UInt8(ascii: "x")) + ArchiveBuilder.tarBlocks(record)
        let entries = try unpack(pax + tar(ArchiveBuilder.tarHeader(name: "short", size: "1"), body: [65]))
        #expect(entries.map(\.path) == ["long/b"])
    }

    @Test(arguments: ["+0000000001", "0x10", "1 2", "\u{80}0000000001", "８"])
    func sizeFieldsThatAreNotPlainOctalAreInvalid(size: String) {
        let bytes = tar(ArchiveBuilder.tarHeader(name: "a.txt", size: size))
        #expect(throws: ArchiveError.invalid("tar entry a.txt has a bad size field", entry: "a.txt")) { try unpack(bytes) }
    }

    @Test func sizeBeyondTheDataIsTruncatedNotATrap() {
        let bytes = ArchiveBuilder.tarHeader(name: "a.txt", size: "77777777777")
        #expect(throws: ArchiveError.invalid("tar entry a.txt is truncated", entry: "a.txt")) { try unpack(bytes) }
    }

    @Test func aTarWithoutItsLastPaddingIsTruncated() {
        let bytes = ArchiveBuilder.tarHeader(name: "a.txt", size: "2") + Array("hi".utf8)
        #expect(throws: ArchiveError.invalid("tar archive is truncated")) { try unpack(bytes) }
    }

    @Test(arguments: [[UInt8](), [0x1f, 0x8b], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff]])
    func brokenGzipIsInvalid(bytes: [UInt8]) {
        #expect(throws: ArchiveError.self) { try unpack(bytes, .tarGzip) }
    }

    @Test(arguments: [[UInt8](), Array("PK\u{5}\u{6}".utf8) + [UInt8](repeating: 0xff, count: 18), [UInt8](repeating: 0, count: 21)])
    func brokenZipIsInvalid(bytes: [UInt8]) {
        #expect(throws: ArchiveError.self) { try unpack(bytes, .zip) }
    }

    @Test func zipOffsetsPastTheEndAreInvalid() {
        var zip = ArchiveBuilder.zerosZip(entries: 1, entrySize: 10)
        // The central directory's local header offset (last 4 bytes before the name) made huge.
        let central = zip.count - 22 - "zeros0.bin".utf8.count - 4
        for i in 0..<4 { zip[central + i] = 0xfe }
        #expect(throws: ArchiveError.invalid("zip entry zeros0.bin has no local header", entry: "zeros0.bin")) { try unpack(zip, .zip) }
    }
}
