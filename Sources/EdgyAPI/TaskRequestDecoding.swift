import EdgyPolicy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reading a create-task request (JSON or multipart) into a `TaskDraft`.
enum TaskRequestDecoding {
    /// The body's bytes, at most `limit` of them (413 beyond).
    static func collect(_ request: inout Request, limit: Int) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge("the request body is larger than \(limit) bytes")
        }
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.tooLarge("the request body is larger than \(limit) bytes")
        }
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
        if let boundary = try Multipart.boundary(contentType: contentType) { return .multipart(boundary: boundary) }
        let type = HeaderParameters(contentType).value.lowercased()
        if type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json")) { return .json }
        throw APIError.unsupportedMediaType("send application/json or multipart/form-data, not \(type)")
    }

    // MARK: JSON

    /// `POST /v1/tasks` as JSON. Unknown keys are refused, so a typo never silently drops a field.
    struct Body: Decodable {
        var name: String?
        var policy: String?
        var input: String?
        var files: [FileBody]?
        var command: [String]?
        var stdin: String?
        var stdinBase64: String?
        var env: [String: String]?
        var limits: LimitsBody?
        var maxAttempts: Int?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, policy, input, files, command, stdin, env, limits
            case stdinBase64 = "stdin_base64", maxAttempts = "max_attempts"
        }

        init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            policy = try c.decodeIfPresent(String.self, forKey: .policy)
            input = try c.decodeIfPresent(String.self, forKey: .input)
            files = try c.decodeIfPresent([FileBody].self, forKey: .files)
            command = try c.decodeIfPresent([String].self, forKey: .command)
            stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
            stdinBase64 = try c.decodeIfPresent(String.self, forKey: .stdinBase64)
            env = try c.decodeIfPresent([String: String].self, forKey: .env)
            limits = try c.decodeIfPresent(LimitsBody.self, forKey: .limits)
            maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts)
        }
    }

    struct FileBody: Decodable {
        enum Encoding: String, Decodable { case utf8, base64 }
        var path: String
        var content: String
        var encoding: Encoding
        var mode: UInt32

        enum CodingKeys: String, CodingKey, CaseIterable { case path, content, encoding, mode }

        init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = try c.decode(String.self, forKey: .path)
            content = try c.decodeIfPresent(String.self, forKey: .content) ?? ""
            encoding = try c.decodeIfPresent(Encoding.self, forKey: .encoding) ?? .utf8
            if let number = try? c.decodeIfPresent(UInt32.self, forKey: .mode) {
                mode = number
            } else if let text = try c.decodeIfPresent(String.self, forKey: .mode) {
                // "0755" or "755": octal as in chmod.
                guard let parsed = UInt32(text.hasPrefix("0o") ? String(text.dropFirst(2)) : text, radix: 8) else {
                    throw DecodingError.dataCorruptedError(forKey: .mode, in: c, debugDescription: "mode must be octal text like \"0755\" or a number")
                }
                mode = parsed
            } else {
                mode = 0o644
            }
        }
    }

    /// `limits`: LimitOverrides with its TOML key names, unknown keys refused.
    struct LimitsBody: Decodable {
        var overrides: LimitOverrides

        init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, known: [
                "wall_time_s", "cpu_time_s", "memory_mib", "pids", "open_files", "file_size_mib", "workdir_mib",
                "tmp_mib", "stdout_kib", "stderr_kib", "output_overflow",
            ])
            overrides = try LimitOverrides(from: decoder)
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    struct UnknownKey: Error {
        var path: String
    }

    static func rejectUnknownKeys(_ decoder: any Decoder, known: [String]) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = container.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw UnknownKey(path: fieldPath(decoder.codingPath + [unknown]))
        }
    }

    static func fieldPath(_ path: [any CodingKey]) -> String {
        var out = ""
        for key in path {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out
    }

    static func draft(fromJSON bytes: [UInt8]) throws(APIError) -> TaskDraft {
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: Data(bytes))
        } catch {
            throw describe(error)
        }
        var draft = TaskDraft()
        draft.name = body.name
        draft.policy = body.policy
        draft.input = body.input
        draft.command = body.command
        draft.env = body.env ?? [:]
        draft.limits = body.limits?.overrides ?? LimitOverrides()
        draft.maxAttempts = body.maxAttempts
        if body.stdin != nil, body.stdinBase64 != nil {
            throw APIError.badRequest("give stdin or stdin_base64, not both", field: "stdin_base64")
        }
        if let stdin = body.stdin { draft.stdin = Array(stdin.utf8) }
        if let encoded = body.stdinBase64 {
            guard let data = Data(base64Encoded: encoded) else { throw APIError.badRequest("stdin_base64 is not valid base64", field: "stdin_base64") }
            draft.stdin = Array(data)
        }
        for (i, file) in (body.files ?? []).enumerated() {
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

    /// A decoding failure as a 400 naming the field.
    static func describe(_ error: any Error) -> APIError {
        switch error {
        case let error as UnknownKey:
            return APIError.badRequest("unknown field \(error.path)", field: error.path)
        case let error as APIError:
            return error
        case DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty:
            return APIError.invalidJSON("the body must be a JSON object")
        case DecodingError.typeMismatch(let type, let context):
            return APIError.badRequest("expected \(typeName(type)): \(context.debugDescription)", field: fieldPath(context.codingPath))
        case DecodingError.valueNotFound(let type, let context):
            return APIError.badRequest("expected \(typeName(type)), found null", field: fieldPath(context.codingPath))
        case DecodingError.keyNotFound(let key, let context):
            let path = fieldPath(context.codingPath + [key])
            return APIError.badRequest("\(path) is required", field: path)
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            return APIError.badRequest(context.debugDescription, field: fieldPath(context.codingPath))
        default:
            return APIError.invalidJSON("the body is not valid JSON")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is UInt32.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        case is [String].Type: "an array of strings"
        default: "\(type)".lowercased()
        }
    }

    // MARK: multipart

    /// `POST /v1/tasks` as multipart: every part with a filename is a file (archives by extension are
    /// unpacked); fields `name`, `policy`, `input` (code for the entry file), `command` (a JSON array),
    /// `stdin`, `env` (repeated `KEY=VALUE`), `limits` (a JSON object), `max_attempts`.
    ///
    /// With `inputNamesFile` (the prototype's `PUT /`), `input` is the name of the uploaded entry file.
    static func draft(fromMultipart bytes: [UInt8], boundary: String, config: APIConfiguration, inputNamesFile: Bool) throws(APIError) -> TaskDraft {
        let parts = try Multipart.parse(bytes, boundary: boundary, maxParts: config.maxFilesPerTask + 64)
        var draft = TaskDraft()
        var fieldsSeen = Set<String>()
        func single(_ part: MultipartPart) throws(APIError) -> String {
            guard fieldsSeen.insert(part.name).inserted else { throw APIError.badRequest("field \(part.name) is given twice", field: part.name) }
            return part.text
        }
        let archiveLimits = ArchiveLimits(maxEntries: config.maxArchiveEntries, maxBytes: config.maxArchiveBytes, maxRatio: config.maxRatio)
        for part in parts {
            if let filename = part.filename {
                if filename.isEmpty, part.body.isEmpty { continue }  // a browser's empty file input
                // Browsers and curl send the base name; some clients send a relative path.
                let fileField = "file:\(filename)"
                if let format = Archive.format(ofFilename: filename) {
                    do {
                        for entry in try Archive.unpack(part.body, format: format, limits: archiveLimits) {
                            draft.files.append(.init(path: entry.path, contents: entry.contents, mode: entry.mode, field: "\(fileField)!\(entry.path)"))
                        }
                    } catch {
                        let field = error.entry.map { "\(fileField)!\($0)" } ?? fileField
                        switch error.kind {
                        case .invalid: throw APIError.invalidArchive("archive \(filename): \(error.message)", field: field)
                        case .tooLarge: throw APIError.tooLarge("archive \(filename): \(error.message)", field: field)
                        }
                    }
                } else {
                    draft.files.append(.init(path: filename, contents: part.body, mode: 0o644, field: fileField))
                }
                continue
            }
            switch part.name {
            case "name": draft.name = try single(part)
            case "policy": draft.policy = try single(part)
            case "input":
                if inputNamesFile { draft.entryFile = try single(part) } else { draft.input = try single(part) }
            case "stdin": draft.stdin = Array(try single(part).utf8)
            case "command":
                let text = try single(part)
                guard let command = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
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
                let text = try single(part)
                do {
                    draft.limits = try JSONDecoder().decode(LimitsBody.self, from: Data(text.utf8)).overrides
                } catch {
                    var described = describe(error)
                    described.field = described.field.map { "limits.\($0)" } ?? "limits"
                    throw described
                }
            case "max_attempts":
                guard let value = Int(try single(part)) else { throw APIError.badRequest("max_attempts must be an integer", field: "max_attempts") }
                draft.maxAttempts = value
            default:
                throw APIError.badRequest("unknown field \(part.name)", field: part.name)
            }
        }
        return draft
    }
}
