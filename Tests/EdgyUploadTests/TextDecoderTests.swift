import EdgyAuth
import EdgyPolicy
import Foundation
import Testing

@testable import EdgyTaskJSON
@testable import EdgyUpload

/// Multipart, task JSON and lifetime text: bad input is an error naming the field, never a trap.
@Suite struct TextDecoderTests {
    @Test(arguments: [
        "--B", "--B\r\n", "--B\r\n\r\n", "--B  \t", "\r\n--B", "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--B",
        "--B\r\nX: \r\n\r\n\r\n--B--",
    ])
    func truncatedMultipartIsAnError(body: String) {
        #expect(throws: MultipartError.self) { try Multipart.parse(Array(body.utf8), boundary: "B", maxParts: 10) }
    }

    @Test func multipartFindRefusesNegativeStarts() {
        #expect(Multipart.find([1], in: [1, 2], from: -1) == nil)
        #expect(Multipart.find([1], in: [1, 2], from: 5) == nil)
        #expect(Multipart.find([2], in: [1, 2], from: 0, limit: 1) == 1)
    }

    @Test(arguments: [
        (#"{"files":[{"path":"a","mode":-1}]}"#, "files[0].mode"),
        (#"{"files":[{"path":"a","mode":4294967296}]}"#, "files[0].mode"),
        (#"{"files":[{"path":"a","mode":1e300}]}"#, "files[0].mode"),
        (#"{"files":[{"path":"a","mode":"-1"}]}"#, "files[0].mode"),
        (#"{"files":[{"path":"a","mode":"7777"}]}"#, "files[0].mode"),
        (#"{"files":[{"path":"a","mode":true}]}"#, "files[0].mode"),
        (#"{"max_attempts":1e30}"#, "max_attempts"),
        (#"{"max_attempts":-1e30}"#, "max_attempts"),
        (#"{"max_attempts":1.5}"#, "max_attempts"),
        (#"{"limits":{"memory_mib":-1}}"#, "limits.memory_mib"),
        (#"{"limits":{"memory_mib":0}}"#, "limits.memory_mib"),
        (#"{"limits":{"memory_mib":1e30}}"#, "limits.memory_mib"),
        (#"{"limits":{"memory_mib":9223372036854775808}}"#, "limits.memory_mib"),
        (#"{"limits":{"wall_time_s":-0.5}}"#, "limits.wall_time_s"),
        (#"{"limits":{"wall_time_s":1e300}}"#, "limits.wall_time_s"),
        (#"{"limits":{"pids":"many"}}"#, "limits.pids"),
        (#"{"limits":{"colour":1}}"#, "limits.colour"),
    ])
    func badNumbersAreErrorsNamingTheField(json: String, field: String) {
        #expect {
            _ = try TaskBody.decode(Array(json.utf8))
        } throws: { error in
            (error as? TaskJSONError)?.field == field
        }
    }

    @Test func goodModesDecode() throws {
        let body = try TaskBody.decode(Array(#"{"files":[{"path":"a","mode":493},{"path":"b","mode":"0755"},{"path":"c","mode":"0o600"},{"path":"d"}]}"#.utf8))
        #expect(body.files?.map(\.mode) == [0o755, 0o755, 0o600, 0o644])
    }

    @Test(arguments: ["[]", "1", "\"x\"", "{", "", "null"])
    func nonObjectsAreInvalidJSON(json: String) {
        #expect(throws: TaskJSONError.self) { try TaskBody.decode(Array(json.utf8)) }
    }

    @Test func multipartLimitsNameTheirField() {
        #expect {
            _ = try LimitsBody.decode(Array(#"{"pids":-3}"#.utf8))
        } throws: { error in
            (error as? TaskJSONError)?.field == "limits.pids"
        }
    }

    @Test(arguments: ["1e10w", "1e3s", "0x10s", "inf s", "infs", "nans", "1.s", ".5h", "1..5h", "-1d", "+1d", " 1d", "0s", "0.0000001s",
                      "3651d", "99999999999999999999w", "1.5.5h", String(repeating: "9", count: 400) + "s"])
    func lifetimesOutOfShapeOrRangeAreRefused(text: String) {
        #expect(TokenLifetime.parse(text) == nil)
    }

    @Test func lifetimesInRangeParse() {
        #expect(TokenLifetime.parse("3650d") == TokenLifetime.maximum)
        #expect(TokenLifetime.parse("1.5h") == 5400)
        #expect(TokenLifetime.parse("1s") == 1)
    }
}
