import EdgyUpload
import Testing

/// The encoders and header parser behind the task-files routes: `Range`, and the tar.gz archive,
/// which the upload decoder (and so `tar`) must read back exactly.
@Suite struct StorageCodecTests {
    @Test(arguments: [
        ("bytes=0-99", ByteRange.partial(lower: 0, upper: 99)),
        ("bytes=100-", .partial(lower: 100, upper: 999)),
        ("bytes=-10", .partial(lower: 990, upper: 999)),
        ("bytes=-5000", .partial(lower: 0, upper: 999)),
        ("bytes=990-5000", .partial(lower: 990, upper: 999)),
        ("BYTES = 1-1", .whole),
        ("bytes= 5 - 7 ", .partial(lower: 5, upper: 7)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=5-4", .whole),
        ("bytes=0-1,5-6", .whole),
        ("items=0-1", .whole),
        ("bytes=abc", .whole),
        ("bytes=-", .whole),
        ("bytes=99999999999999999999-", .whole),
        ("", .whole),
    ])
    func rangeHeaders(header: String, expected: ByteRange) {
        #expect(ByteRange.parse(header, size: 1000) == expected, "\(header)")
    }

    @Test func rangesOfAnEmptyFileAreUnsatisfiable() {
        #expect(ByteRange.parse(nil, size: 0) == .whole)
        #expect(ByteRange.parse("bytes=0-", size: 0) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=-1", size: 0) == .unsatisfiable)
    }

    @Test func theArchiveReadsBackExactly() throws {
        var writer = TarWriter()
        let long = (0..<12).map { "directory\($0)" }.joined(separator: "/") + "/file.txt"  // > 100 bytes: ustar prefix
        let longer = String(repeating: "x", count: 180) + "/y.bin"  // no split fits: a pax record
        let files: [(String, [UInt8], UInt32)] = [
            ("out/plot.svg", Array("<svg/>\n".utf8), 0o644),
            ("out/empty", [], 0o600),
            ("out/run.sh", Array("#!/bin/sh\n".utf8), 0o755),
            (long, Array(repeating: 7, count: 513), 0o644),
            (longer, (0...255).map(UInt8.init), 0o644),
        ]
        for (path, contents, mode) in files { writer.add(path: path, contents: contents, mode: mode, modifiedAt: 1_800_000_000) }
        var budget = UploadBudget(limit: 1 << 20)
        let entries = try Archive.unpack(
            Gzip.compress(writer.archive()), format: .tarGzip,
            limits: ArchiveLimits(maxEntries: 100, maxBytes: 1 << 20, maxRatio: 1000), budget: &budget)
        let read = entries.map { ($0.path, $0.contents) }
        #expect(read.map(\.0) == files.map(\.0))
        #expect(read.map(\.1) == files.map(\.1))
        #expect(entries.first { $0.path == "out/run.sh" }?.mode == 0o755)
    }
}
