import EdgyTestSupport
import Testing

@testable import EdgyUpload

/// One byte budget for all of a request's files: charged before bytes are produced.
@Suite struct BudgetTests {
    static let limits = ArchiveLimits(maxEntries: 1024, maxBytes: 16 << 20, maxRatio: 100_000)

    @Test func aZipOfZerosStopsAtTheBudgetAcrossArchives() throws {
        // 16 entries of exactly 1 MiB: each is at the ratio floor, so only the budget stops it.
        let zip = ArchiveBuilder.zerosZip(entries: 16, entrySize: 1 << 20)
        #expect(zip.count < 32 << 10)
        var budget = UploadBudget(limit: 16 << 20)
        let first = try Archive.unpack(zip, format: .zip, limits: Self.limits, budget: &budget)
        #expect(first.count == 16 && budget.remaining == 0)
        #expect(throws: ArchiveError.tooLarge("the upload unpacks to more than 16777216 bytes", entry: "zeros0.bin")) {
            try Archive.unpack(zip, format: .zip, limits: Self.limits, budget: &budget)
        }
    }

    @Test func theBudgetStopsAZipPartWay() {
        var budget = UploadBudget(limit: 5 << 20)
        let zip = ArchiveBuilder.zerosZip(entries: 16, entrySize: 1 << 20)
        #expect(throws: ArchiveError.tooLarge("the upload unpacks to more than 5242880 bytes", entry: "zeros5.bin")) {
            try Archive.unpack(zip, format: .zip, limits: Self.limits, budget: &budget)
        }
        #expect(budget.used == 5 << 20)
    }

    @Test func tarEntriesAreCharged() {
        let body = [UInt8](repeating: 7, count: 1000)
        let tar = ArchiveBuilder.tarHeader(name: "a", size: String(body.count, radix: 8)) + ArchiveBuilder.tarBlocks(body) + ArchiveBuilder.tarEnd
        var budget = UploadBudget(limit: 999)
        #expect(throws: ArchiveError.tooLarge("the upload unpacks to more than 999 bytes", entry: "a")) {
            try Archive.unpack(tar, format: .tar, limits: Self.limits, budget: &budget)
        }
    }

    @Test func chargesNeverOverflowOrGoNegative() {
        var budget = UploadBudget(limit: 10)
        let negative = budget.charge(-1)
        let huge = budget.charge(.max)
        let all = budget.charge(10)
        let more = budget.charge(1)
        #expect(!negative && !huge && all && !more)
        #expect(budget.remaining == 0 && budget.used == 10)
    }
}
