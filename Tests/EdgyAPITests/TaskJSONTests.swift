@testable import EdgyAPI
import EdgyJSON
import EdgyModel
import EdgyStore
import Foundation
import Testing

/// `taskJSON` writes the last report once and its bytes twice: the result must be the JSON the
/// plain encoder gives for each part, for every shape of attempts.
@Suite struct TaskJSONTests {
    private func parse(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    /// One spelling of equal JSON values: their keys sorted.
    private func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    private func plain(_ value: some Encodable) throws -> Any {
        try JSONSerialization.jsonObject(with: try SortedJSON.fallbackEncoder().encode(value), options: .fragmentsAllowed)
    }

    private func task(_ attempts: [AttemptRecord]) -> TaskRecord {
        TaskRecord(tenant: "t", spec: TaskSpec(name: "n/with \"quotes\"", policy: "python"), attempts: attempts)
    }

    private func report(_ code: Int32, files: Int) -> AttemptReport {
        var report = AttemptReport(outcome: .exited, exitCode: code, stdout: Array("out \(code) \u{1}/é".utf8), stderr: [0xff, 0x00])
        report.outputs = OutputsReport(files: (0..<files).map { .init(path: "out/f\($0).bin", size: $0, sha256: String(repeating: "a", count: 64), mode: 0o644) })
        return report
    }

    @Test(arguments: [0, 1, 2, 3])
    func everyAttemptShapeEncodesAsThePlainEncoderWould(shape: Int) throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let attempts: [AttemptRecord] = [
            [],
            [AttemptRecord(number: 1, worker: "w", startedAt: start)],  // running: no report yet
            [AttemptRecord(number: 1, worker: "w", startedAt: start, finishedAt: start, outcome: .exited, report: report(1, files: 2)),
             AttemptRecord(number: 2, worker: "w", startedAt: start, finishedAt: start, outcome: .lost)],  // result: the first
            [AttemptRecord(number: 1, worker: "w", startedAt: start, finishedAt: start, outcome: .exited, report: report(1, files: 0)),
             AttemptRecord(number: 2, worker: "w", startedAt: start, finishedAt: start, outcome: .lost),
             AttemptRecord(number: 3, worker: "v", startedAt: start, finishedAt: start, outcome: .exited, report: report(0, files: 100))],
        ][shape]
        let record = task(attempts)
        let json = try parse(try taskJSON(record))

        var expected = try #require(try plain(TaskResource(task: record)) as? [String: Any])
        expected["result"] = try record.lastReport.map { try plain($0) } ?? NSNull()
        expected["attempts"] = try attempts.map { attempt -> Any in
            var object = try #require(try plain(TaskResource.Attempt(record: attempt)) as? [String: Any])
            object["report"] = try attempt.report.map { try plain($0) } ?? NSNull()
            return object
        }
        #expect(try canonical(json) == canonical(expected))
        // Byte for byte, the parts are what JSONEncoder writes.
        #expect(try answerJSON(TaskResource(task: record)) == Array(SortedJSON.fallbackEncoder().encode(TaskResource(task: record))))
        for attempt in attempts {
            #expect(try answerJSON(TaskResource.Attempt(record: attempt)) == Array(SortedJSON.fallbackEncoder().encode(TaskResource.Attempt(record: attempt))))
        }
        #expect(Set(json.keys).isSuperset(of: ["id", "attempts", "result", "stdout", "stdout_base64", "files", "status"]))
    }

    @Test func aPageListsEachTaskAsItsOwnAnswerDoes() throws {
        let records = [task([]), task([AttemptRecord(number: 1, worker: "w", startedAt: Date(), finishedAt: Date(), outcome: .exited, report: report(0, files: 3))])]
        for cursor in [nil, "abc"] as [String?] {
            let json = try parse(try encodePage(records, nextCursor: cursor))
            #expect((json["next_cursor"] as? String) == cursor)
            if cursor == nil { #expect(json["next_cursor"] is NSNull) }
            let tasks = try #require(json["tasks"] as? [[String: Any]])
            #expect(tasks.count == 2)
            for (listed, record) in zip(tasks, records) {
                #expect(try canonical(listed) == canonical(try parse(try taskJSON(record))))
            }
        }
    }
}
