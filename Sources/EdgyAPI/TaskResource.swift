import EdgyJSON
import EdgyModel
import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The JSON shape of a task in every response (`/v1` and the prototype routes):
///
/// ```json
/// {"id", "name", "tenant", "policy", "status", "cancel_requested", "max_attempts",
///  "created_at", "updated_at", "finished_at",
///  "files": [{"path", "size", "mode", "blob"?}],
///  "attempts": [{"number", "worker", "started_at", "finished_at", "outcome", "report"}],
///  "result": <the last attempt report or null>, "outcome", "exit_code", "stdout", "stderr",
///  "stdout_base64", "stderr_base64"}
/// ```
///
/// `attempts` and `result` come first, the other keys follow sorted (see `taskJSON`).
/// Times are ISO 8601 with fractional seconds (UTC); absent values are `null`, never left out.
/// `outcome`, `exit_code`, `stdout` and `stderr` repeat the last report's, for the prototype's clients.
/// `stdout`/`stderr` are text (invalid UTF-8 replaced); `stdout_base64`/`stderr_base64` are the
/// exact bytes, as are `GET /v1/tasks/{id}/stdout` and `/stderr`.
/// This type encodes everything but `attempts` and `result`, which `taskJSON` adds.
struct TaskResource: Encodable {
    let task: TaskRecord

    struct FileSummary: Encodable {
        var path: String
        var size: Int
        var mode: String
        /// `sha256:<hex>` for a file given by reference (its size is then the blob's, not shown: 0).
        var blob: String?
    }

    /// An attempt without its `report`, which `taskJSON` adds.
    struct Attempt: Encodable {
        let record: AttemptRecord

        enum CodingKeys: String, CodingKey { case number, worker, startedAt = "started_at", finishedAt = "finished_at", outcome }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(record.number, forKey: .number)
            try c.encode(record.worker, forKey: .worker)
            try c.encode(timestamp(record.startedAt), forKey: .startedAt)
            try c.encode(record.finishedAt.map(timestamp), forKey: .finishedAt)
            try c.encode(record.outcome, forKey: .outcome)
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, tenant, policy, status, files, outcome, stdout, stderr
        case stdoutBase64 = "stdout_base64", stderrBase64 = "stderr_base64"
        case cancelRequested = "cancel_requested", maxAttempts = "max_attempts"
        case createdAt = "created_at", updatedAt = "updated_at", finishedAt = "finished_at", exitCode = "exit_code"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let report = task.lastReport
        try c.encode(task.id.uuidString.lowercased(), forKey: .id)
        try c.encode(task.spec.name, forKey: .name)
        try c.encode(task.tenant, forKey: .tenant)
        try c.encode(task.spec.policy, forKey: .policy)
        try c.encode(task.status, forKey: .status)
        try c.encode(task.cancelRequested, forKey: .cancelRequested)
        try c.encode(task.spec.maxAttempts, forKey: .maxAttempts)
        try c.encode(timestamp(task.createdAt), forKey: .createdAt)
        try c.encode(timestamp(task.updatedAt), forKey: .updatedAt)
        try c.encode(task.finishedAt.map(timestamp), forKey: .finishedAt)
        try c.encode(
            task.spec.files.map { FileSummary(path: $0.path, size: $0.size, mode: String($0.mode, radix: 8), blob: $0.blob.map { "sha256:" + $0 }) },
            forKey: .files)
        try c.encode(report?.outcome, forKey: .outcome)
        try c.encode(report?.exitCode, forKey: .exitCode)
        try c.encode(report.map { AttemptReport.storableText($0.stdout) }, forKey: .stdout)
        try c.encode(report.map { AttemptReport.storableText($0.stderr) }, forKey: .stderr)
        try c.encode(report.map { Data($0.stdout).base64EncodedString() }, forKey: .stdoutBase64)
        try c.encode(report.map { Data($0.stderr).base64EncodedString() }, forKey: .stderrBase64)
    }
}

/// `2026-12-01T03:58:01.123Z`.
func timestamp(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

/// The bytes of every JSON answer: sorted keys, so equal values give equal bytes (`JSONEncoder`'s form).
func answerJSON(_ value: some Encodable) throws -> [UInt8] {
    try SortedJSON.encode(value)
}

/// A JSON response.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    bytesResponse(try answerJSON(value), status: status, headers: headers)
}

private func bytesResponse(_ json: [UInt8], status: HTTPResponse.Status, headers: HTTPFields) -> Response {
    var fields = headers
    fields[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: json)))
}

func taskResponse(_ task: TaskRecord, lastReportJSON: [UInt8]? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
    bytesResponse(try taskJSON(task, lastReportJSON: lastReportJSON), status: status, headers: [.location: "/v1/tasks/\(task.id.uuidString.lowercased())"])
}

/// A task as `GET /v1/tasks/{id}` answers it, and the body of its webhook. The last report (its
/// output, its file list) is most of it, and it appears twice, as `result` and in its attempt: it
/// is encoded once and its bytes written in both places. So `attempts` and `result` come first;
/// the other keys follow, sorted. `lastReportJSON`, when given, is that report's `json()`.
public func taskJSON(_ task: TaskRecord, lastReportJSON: [UInt8]? = nil) throws -> [UInt8] {
    let last = task.attempts.lastIndex(where: { $0.report != nil })
    let result = try last.map { index in try lastReportJSON ?? task.attempts[index].report!.json() } ?? Array("null".utf8)
    var json = Array(#"{"attempts":["#.utf8)
    json.reserveCapacity(2 * result.count + 1024)
    for (index, attempt) in task.attempts.enumerated() {
        if index > 0 { json.append(UInt8(ascii: ",")) }
        json += try answerJSON(TaskResource.Attempt(record: attempt)).dropLast()  // its closing brace
        json += #","report":"#.utf8
        json += index == last ? result : try attempt.report.map { try $0.json() } ?? Array("null".utf8)
        json.append(UInt8(ascii: "}"))
    }
    json += #"],"result":"#.utf8
    json += result
    json.append(UInt8(ascii: ","))
    json += try answerJSON(TaskResource(task: task)).dropFirst()  // its opening brace
    return json
}

/// A `text/plain` response.
/// A workload's output, byte for byte: labelled UTF-8 text when it is, octet-stream otherwise.
func outputResponse(_ bytes: [UInt8]) -> Response {
    let type = String(bytes: bytes, encoding: .utf8) != nil ? "text/plain; charset=utf-8" : "application/octet-stream"
    return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

func textResponse(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// A page of `GET /v1/tasks`: `{"next_cursor": …, "tasks": [<each as taskJSON writes it>]}`.
func taskPageResponse(_ tasks: [TaskRecord], nextCursor: String?) throws -> Response {
    bytesResponse(try encodePage(tasks, nextCursor: nextCursor), status: .ok, headers: [:])
}

func encodePage(_ tasks: [TaskRecord], nextCursor: String?) throws -> [UInt8] {
    struct Cursor: Encodable {
        var nextCursor: String?
        enum CodingKeys: String, CodingKey { case nextCursor = "next_cursor" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(nextCursor, forKey: .nextCursor)  // null on the last page, never left out
        }
    }
    var json = Array(try answerJSON(Cursor(nextCursor: nextCursor)).dropLast())  // its closing brace
    json += #","tasks":["#.utf8
    for (index, task) in tasks.enumerated() {
        if index > 0 { json.append(UInt8(ascii: ",")) }
        json += try taskJSON(task)
    }
    json += "]}".utf8
    return json
}
