import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import EdgyAPI

/// A forged page cursor is a 400 naming `cursor`, never a crash; an empty one is the first page.
@Suite("List cursors")
struct CursorTests {
    static func cursor(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
    }

    @Test func outOfRangeTimesAreRejected() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"x"}"#).status == .created)
            let zero = "00000000-0000-0000-0000-000000000000"
            for micros in ["9223372036854775807", "-9223372036854775808", "253402300800000000", "-62135596800000001"] {
                let response = try await client.get("/v1/tasks?cursor=\(Self.cursor("\(micros)|\(zero)"))", token: Harness.reader)
                #expect(response.status == .badRequest, "\(micros)")
                #expect(try response.error.field == "cursor", "\(micros)")
            }
            // Still serving, and the edges of the stored range are accepted.
            for micros in ["253402300799999999", "-62135596800000000", "0"] {
                let response = try await client.get("/v1/tasks?cursor=\(Self.cursor("\(micros)|\(zero)"))", token: Harness.reader)
                #expect(response.status == .ok, "\(micros)")
            }
            let newest = try await client.get("/v1/tasks?cursor=\(Self.cursor("253402300799999999|\(zero)"))", token: Harness.reader)
            #expect(try #require(try newest.json["tasks"] as? [Any]).count == 1)
        }
    }

    @Test func emptyCursorIsTheFirstPage() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            for _ in 0..<3 { #expect(try await client.postJSON("/v1/tasks", #"{"input":"x"}"#).status == .created) }
            let page = try await client.get("/v1/tasks?limit=2&cursor=", token: Harness.reader)
            #expect(page.status == .ok)
            #expect(try #require(try page.json["tasks"] as? [Any]).count == 2)
            #expect(try page.json["next_cursor"] as? String != nil)
        }
    }
}
