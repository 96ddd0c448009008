import EdgyModel
import EdgyPolicy
import EdgyTaskJSON
import EdgyUpload
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reading a create-task request (JSON or multipart) into a `TaskDraft`.
enum TaskRequestDecoding {
    /// The body's bytes, at most `limit` of them, each counted in `share` (when given) before it
    /// is kept: a declared `Content-Length` at once, a chunked body in doubling steps.
    /// - Throws: `APIError` 413 `tooLarge` beyond `limit`; 408 `too_slow` when, past
    ///   `bodyRateGrace`, the body has arrived at less than `minBodyBytesPerSecond`; `share`'s
    ///   refusals (429, 503).
    static func collect(
        _ request: Request, limit: Int, tooLarge: String, share: BodyShare?, config: APIConfiguration
    ) async throws -> [UInt8] {
        let declared = request.headers[.contentLength].flatMap(Int.init)
        if let declared, declared > limit { throw APIError.tooLarge(tooLarge) }
        if let declared, let share {
            try await share.grow(to: declared, wait: config.decodeWaitLimit, retryAfter: config.retryAfterSeconds)
        }
        let start = ContinuousClock.now
        var bytes: [UInt8] = []
        bytes.reserveCapacity(declared ?? 0)
        for try await buffer in request.body {
            let total = bytes.count + buffer.readableBytes
            guard total <= limit else { throw APIError.tooLarge(tooLarge) }
            let elapsed = ContinuousClock.now - start
            if elapsed > config.bodyRateGrace && Double(total) < Double(config.minBodyBytesPerSecond) * elapsed.seconds {
                throw APIError(
                    .requestTimeout, code: "too_slow",
                    "the request body arrived at less than \(config.minBodyBytesPerSecond) bytes a second (\(total) bytes in \(Int(elapsed.seconds)) s)",
                    headers: [.connection: "close"])
            }
            if let share, total > share.bytes {
                try await share.grow(
                    to: min(limit, max(total, 2 * share.bytes, 64 << 10)), wait: config.decodeWaitLimit, retryAfter: config.retryAfterSeconds)
            }
            bytes.append(contentsOf: buffer.readableBytesView)
        }
        return bytes
    }

    enum BodyKind {
        case json
        case multipart(boundary: String)
    }

    /// JSON or multipart, else 415.
    static func kind(of request: Request) throws(APIError) -> BodyKind {
        guard let contentType = request.headers[.contentType] else {
            throw APIError.unsupportedMediaType("send application/json or multipart/form-data (no Content-Type given)")
        }
        let boundary: String?
        do throws(MultipartError) {
            boundary = try Multipart.boundary(contentType: contentType)
        } catch {
            throw apiError(error)
        }
        if let boundary { return .multipart(boundary: boundary) }
        let type = HeaderParameters(contentType).value.lowercased()
        if type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json")) { return .json }
        throw APIError.unsupportedMediaType("send application/json or multipart/form-data, not \(type)")
    }

    // MARK: JSON

    /// `POST /v1/tasks` as JSON (see `TaskBody`).
    static func draft(fromJSON bytes: [UInt8]) throws(APIError) -> TaskDraft {
        let body: TaskBody
        do throws(TaskJSONError) {
            body = try TaskBody.decode(bytes)
        } catch {
            throw apiError(error)
        }
        var draft = TaskDraft()
        draft.name = body.name
        draft.policy = body.policy
        draft.input = body.input
        draft.command = body.command
        draft.env = body.env ?? [:]
        draft.limits = body.limits?.overrides ?? LimitOverrides()
        draft.maxAttempts = body.maxAttempts
        draft.dependencies = body.dependencies
        if body.stdin != nil, body.stdinBase64 != nil {
            throw APIError.badRequest("give stdin or stdin_base64, not both", field: "stdin_base64")
        }
        if let stdin = body.stdin { draft.stdin = Array(stdin.utf8) }
        if let encoded = body.stdinBase64 {
            guard let data = Data(base64Encoded: encoded) else { throw APIError.badRequest("stdin_base64 is not valid base64", field: "stdin_base64") }
            draft.stdin = Array(data)
        }
        draft.outputs = body.outputs
        draft.steps = body.steps
        draft.callbackURL = body.callbackURL
        for (i, file) in (body.files ?? []).enumerated() {
            if let blob = file.blob {
                draft.files.append(.init(path: file.path, contents: [], mode: file.mode, field: "files[\(i)]", blob: blob))
                continue
            }
            let contents: [UInt8]
            switch file.encoding {
            case .utf8: contents = Array(file.content.utf8)
            case .base64:
                guard let data = Data(base64Encoded: file.content) else {
                    throw APIError.badRequest("content is not valid base64", field: "files[\(i)].content")
                }
                contents = Array(data)
            }
            draft.files.append(.init(path: file.path, contents: contents, mode: file.mode, field: "files[\(i)]"))
        }
        return draft
    }

    /// 400 `invalid_field` naming the field, or `invalid_json` when the body is not a JSON object.
    static func apiError(_ error: TaskJSONError) -> APIError {
        guard let field = error.field else { return APIError.invalidJSON(error.message) }
        return APIError.badRequest(error.message, field: field)
    }

    // MARK: multipart

    /// `POST /v1/tasks` as multipart: every part with a filename is a file (archives by extension are
    /// unpacked); fields `name`, `policy`, `input` (code for the entry file), `command` (a JSON array),
    /// `stdin`, `env` (repeated `KEY=VALUE`), `limits` (a JSON object), `steps` (a JSON array), `max_attempts`.
    ///
    /// With `inputNamesFile` (the prototype's `PUT /`), `input` is the name of the uploaded entry file.
    ///
    /// All files and archive entries together draw on one `UploadBudget` of `maxUploadBytes`, charged
    /// before each file's bytes are produced; at most `maxArchivesPerRequest` parts are archives.
    static func draft(fromMultipart bytes: [UInt8], boundary: String, config: APIConfiguration, inputNamesFile: Bool) throws(APIError) -> TaskDraft {
        let parts: [MultipartPart]
        do throws(MultipartError) {
            parts = try Multipart.parse(bytes, boundary: boundary, maxParts: config.maxFilesPerTask + 64)
        } catch {
            throw apiError(error)
        }
        let archives = parts.filter { part in part.filename.flatMap(Archive.format(ofFilename:)) != nil }
        guard archives.count <= config.maxArchivesPerRequest else {
            throw APIError.tooLarge("a request may carry at most \(config.maxArchivesPerRequest) archives (this one has \(archives.count))", field: "files")
        }
        var draft = TaskDraft()
        var budget = UploadBudget(limit: config.maxUploadBytes)
        var fieldsSeen = Set<String>()
        for part in parts {
            if let filename = part.filename {
                try addFiles(of: part, filename: filename, to: &draft, budget: &budget, config: config)
            } else {
                guard part.name == "env" || fieldsSeen.insert(part.name).inserted else {
                    throw APIError.badRequest("field \(part.name) is given twice", field: part.name)
                }
                try apply(field: part, to: &draft, inputNamesFile: inputNamesFile)
            }
        }
        return draft
    }

    static func apiError(_ error: MultipartError) -> APIError {
        switch error.kind {
        case .invalid: APIError.badRequest(error.message)
        case .tooLarge: APIError.tooLarge(error.message)
        }
    }

    /// A file part: itself, or an archive's entries.
    private static func addFiles(of part: MultipartPart, filename: String, to draft: inout TaskDraft, budget: inout UploadBudget, config: APIConfiguration) throws(APIError) {
        if filename.isEmpty, part.body.isEmpty { return }  // a browser's empty file input
        // Browsers and curl send the base name; some clients send a relative path.
        let fileField = "file:\(filename)"
        guard let format = Archive.format(ofFilename: filename) else {
            guard budget.charge(part.body.count) else { throw APIError.tooLarge(budget.exhausted, field: fileField) }
            draft.files.append(.init(path: filename, contents: part.body, mode: 0o644, field: fileField))
            return
        }
        let limits = ArchiveLimits(maxEntries: config.maxArchiveEntries, maxBytes: config.maxArchiveBytes, maxRatio: config.maxRatio)
        do throws(ArchiveError) {
            for entry in try Archive.unpack(part.body, format: format, limits: limits, budget: &budget) {
                draft.files.append(.init(path: entry.path, contents: entry.contents, mode: entry.mode, field: "\(fileField)!\(entry.path)"))
            }
        } catch {
            let field = error.entry.map { "\(fileField)!\($0)" } ?? fileField
            switch error.kind {
            case .invalid: throw APIError.invalidArchive("archive \(filename): \(error.message)", field: field)
            case .tooLarge: throw APIError.tooLarge("archive \(filename): \(error.message)", field: field)
            }
        }
    }

    /// A field part (no filename). Every field but `env` is given at most once (checked by the caller).
    private static func apply(field part: MultipartPart, to draft: inout TaskDraft, inputNamesFile: Bool) throws(APIError) {
        switch part.name {
        case "name": draft.name = part.text
        case "policy": draft.policy = part.text
        case "callback_url": draft.callbackURL = part.text
        case "input":
            if inputNamesFile { draft.entryFile = part.text } else { draft.input = part.text }
        case "stdin": draft.stdin = part.body
        case "command":
            guard let command = try? JSONDecoder().decode([String].self, from: Data(part.body)) else {
                throw APIError.badRequest("command must be a JSON array of strings", field: "command")
            }
            draft.command = command
        case "env":
            let text = part.text
            guard let eq = text.firstIndex(of: "=") else { throw APIError.badRequest("env fields are KEY=VALUE", field: "env") }
            let key = String(text[..<eq])
            guard draft.env[key] == nil else { throw APIError.badRequest("env \(key) is given twice", field: "env.\(key)") }
            draft.env[key] = String(text[text.index(after: eq)...])
        case "limits":
            do throws(TaskJSONError) {
                draft.limits = try LimitsBody.decode(part.body)
            } catch {
                throw APIError.badRequest(error.message, field: error.field)
            }
        case "steps":
            do throws(TaskJSONError) {
                draft.steps = try StepBody.decodeList(part.body)
            } catch {
                throw APIError.badRequest(error.message, field: error.field)
            }
        case "max_attempts":
            guard let value = Int(part.text.trimmingCharacters(in: .whitespaces)) else {
                throw APIError.badRequest("max_attempts must be an integer", field: "max_attempts")
            }
            draft.maxAttempts = value
        default:
            throw APIError.badRequest("unknown field \(part.name)", field: part.name)
        }
    }
}
