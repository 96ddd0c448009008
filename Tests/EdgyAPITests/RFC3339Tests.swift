import Foundation
import Testing

@testable import EdgyAPI

/// `GET /v1/audit?since=` takes what OpenAPI's `format: date-time` promises: any RFC 3339 time,
/// including offsets Foundation's ISO 8601 parser refuses; anything else is nil (a 400 naming `since`).
@Suite("RFC 3339 times")
struct RFC3339Tests {
    @Test func parsesZuluFractionsAndEveryOffset() throws {
        #expect(RFC3339.date("2026-01-31T12:00:00Z") == Date(timeIntervalSince1970: 1_769_860_800))
        #expect(RFC3339.date("2026-01-31t12:00:00.250z") == Date(timeIntervalSince1970: 1_769_860_800.25))
        #expect(RFC3339.date("2026-01-31T12:00:00+01:30") == Date(timeIntervalSince1970: 1_769_860_800 - 5400))
        // Beyond Foundation's ±18 h: schemathesis sent this and got a 400 for a schema-valid time.
        #expect(RFC3339.date("2118-11-13T03:43:51-23:05") == Date(timeIntervalSince1970: 4_697_754_231 + 83_100))
    }

    @Test func refusesWhatIsNotATime() {
        for text in ["", "yesterday", "2026-01-31", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-31T24:00:00Z",
                     "2026-01-31T12:00:00", "2026-01-31T12:00:00+24:00", "2026-01-31T12:00:00.Z", "2026-01-31T12:00:00Z ",
                     "+2026-01-31T12:00:00Z", String(repeating: "9", count: 100)] {
            #expect(RFC3339.date(text) == nil, "\(text)")
        }
    }
}
