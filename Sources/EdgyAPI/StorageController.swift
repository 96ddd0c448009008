import EdgyAuth
import EdgyModel
import EdgyStore
import EdgyUpload
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore

/// Files out and blobs in ([storage.md](../../docs/storage.md)):
/// - `POST /v1/blobs` stores a body as a blob of the tenant (idempotent); `GET` reads it back,
///   `DELETE` removes the tenant's upload;
/// - `GET /v1/tasks/{id}/files` lists the files the task's last attempt collected, `…/files/{path}`
///   serves one (with `Range`), `…/files.tar.gz` all of them.
/// Every route is scoped to the token's tenant: another tenant's blob or task is a 404.
struct StorageController: Sendable {
    let service: TaskService

    var blobs: (any BlobStore)? { service.deps.blobs }

    func register(_ routes: RouteRegistrar) {
        routes.on(.post, "v1/blobs", use: upload)
        routes.on(.get, "v1/blobs/{digest}", use: download)
        routes.on(.delete, "v1/blobs/{digest}", use: remove)
        routes.on(.get, "v1/tasks/{id}/files", use: listFiles)
        routes.on(.get, "v1/tasks/{id}/files.tar.gz", use: archive)
        routes.on(.get, "v1/tasks/{id}/files/{path}", routerPath: "v1/tasks/{id}/files/**", use: file)
    }

    struct BlobResource: Encodable {
        var blob: String
        var size: Int64
        var created_at: String
    }

    private func store() throws(APIError) -> any BlobStore {
        guard let blobs else { throw APIError(.notImplemented, code: "blobs_unavailable", "this server keeps no blobs") }
        return blobs
    }

    private static func resource(_ blob: StoredBlob) -> BlobResource {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return BlobResource(blob: "sha256:\(blob.sha256)", size: blob.size, created_at: formatter.string(from: blob.createdAt))
    }

    @Sendable func upload(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let blobs = try store()
        let limit = service.config.maxBlobBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge("a blob may be at most \(limit) bytes")
        }
        // A permit per upload in progress, so all of them together hold a known amount of memory.
        guard await service.blobGate.acquire(wait: service.config.decodeWaitLimit) else {
            throw APIError(.serviceUnavailable, code: "busy", "too many blob uploads are in progress; retry shortly",
                           headers: [.retryAfter: String(service.config.retryAfterSeconds)])
        }
        defer { service.blobGate.release() }
        // Streamed in, hashed as a whole once it is in: the body never exceeds `limit` in memory,
        // and one trickled in (408) does not hold its permit for long.
        let bytes = try await TaskRequestDecoding.collect(
            request, limit: limit, tooLarge: "a blob may be at most \(limit) bytes", share: nil, config: service.config)
        guard !bytes.isEmpty else {
            throw APIError.badRequest("the body is empty: send the blob's bytes (an empty file needs no blob: give it content \"\")")
        }
        let sha256 = try await BlockingWork.run(bytes: bytes.count) { BlobDigest.sha256Hex(bytes) }
        let quota = service.config.tenantQuotas.quota(for: principal.tenant)
        let stored: (blob: StoredBlob, created: Bool)
        do {
            stored = try await blobs.putUpload(sha256: sha256, bytes: bytes, tenant: principal.tenant, maxBytes: quota.maxBytes, now: StoreTime.rounded(Date()))
        } catch let error as StoreError where error.code == .quotaExceeded {
            throw APIError(.tooManyRequests, code: "quota_exceeded", error.message, field: error.quota)
        }
        context.audit.update { $0.detail = "blob sha256:\(sha256) \(bytes.count) bytes" }
        context.logger.info("blob stored", metadata: ["sha256": "\(sha256)", "bytes": "\(bytes.count)", "new": "\(stored.created)"])
        return try jsonResponse(Self.resource(stored.blob), status: stored.created ? .created : .ok, headers: [.location: "/v1/blobs/sha256:\(sha256)"])
    }

    /// The tenant's blob named by the path's `sha256:<hex>` (or bare hex), or 404.
    private func tenantBlob(_ context: EdgyRequestContext) async throws -> (any BlobStore, StoredBlob) {
        let principal = try context.requirePrincipal()
        let blobs = try store()
        // `sha256:…` arrives as written or with its colon percent-encoded.
        let raw = try context.parameters.require("digest")
        let text = raw.removingPercentEncoding ?? raw
        guard let sha256 = BlobDigest.parse(text) else {
            throw APIError.badRequest("a blob is named sha256: and 64 lower-case hexadecimal digits", field: "digest")
        }
        guard let blob = try await blobs.blob(sha256: sha256, tenant: principal.tenant) else {
            throw APIError(.notFound, code: "blob_not_found", "no blob sha256:\(sha256)")
        }
        return (blobs, blob)
    }

    @Sendable func download(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let (blobs, blob) = try await tenantBlob(context)
        let bytes = try await Self.contents(of: blob.sha256, in: blobs)
        return Self.serve(bytes, request: request, contentType: "application/octet-stream", etag: blob.sha256)
    }

    @Sendable func remove(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let (blobs, blob) = try await tenantBlob(context)
        guard try await blobs.deleteUpload(sha256: blob.sha256, tenant: principal.tenant) else {
            throw APIError(.conflict, code: "blob_in_use", "sha256:\(blob.sha256) was not uploaded by this tenant: it is a file of its tasks, and goes with them")
        }
        return Response(status: .noContent)
    }

    /// A blob's bytes, checked; a corrupted blob is a 500 and a metric, never served.
    static func contents(of sha256: String, in blobs: any BlobStore) async throws -> [UInt8] {
        do {
            guard let bytes = try await blobs.blobContents(sha256: sha256) else {
                throw APIError(.notFound, code: "blob_not_found", "blob sha256:\(sha256) is gone")
            }
            return bytes
        } catch is BlobCorruptedError {
            Metrics.Counter(label: "edgy_blob_corrupted_total").increment()
            throw APIError(.internalServerError, code: "blob_corrupted", "blob sha256:\(sha256) does not match its digest; it is not served")
        }
    }

    // MARK: Files of a task

    /// The last attempt that collected files (its number and report), or nil.
    private static func collected(_ task: TaskRecord) -> (attempt: Int, outputs: OutputsReport)? {
        for attempt in task.attempts.reversed() {
            if let outputs = attempt.report?.outputs { return (attempt.number, outputs) }
        }
        return nil
    }

    struct FileList: Encodable {
        var attempt: Int?
        var files: [OutputsReport.File]
        var omitted: [OutputsReport.Omitted]
        var omitted_count: Int
        var outputs_truncated: Bool
        var error: String?

        enum CodingKeys: String, CodingKey { case attempt, files, omitted, omitted_count, outputs_truncated, error }

        /// `attempt` is always present (null when nothing was collected), as the schema says.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(files, forKey: .files)
            try c.encode(omitted, forKey: .omitted)
            try c.encode(omitted_count, forKey: .omitted_count)
            try c.encode(outputs_truncated, forKey: .outputs_truncated)
            try c.encodeIfPresent(error, forKey: .error)
        }
    }

    @Sendable func listFiles(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let task = try await service.task(try context.parameters.require("id"), principal: try context.requirePrincipal())
        guard let (attempt, outputs) = Self.collected(task) else {
            return try jsonResponse(FileList(attempt: nil, files: [], omitted: [], omitted_count: 0, outputs_truncated: false, error: nil))
        }
        return try jsonResponse(FileList(
            attempt: attempt, files: outputs.files, omitted: outputs.omitted, omitted_count: outputs.omittedCount,
            outputs_truncated: outputs.truncated, error: outputs.error))
    }

    @Sendable func file(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let task = try await service.task(try context.parameters.require("id"), principal: try context.requirePrincipal())
        let path = context.parameters.getCatchAll().map { $0.removingPercentEncoding ?? String($0) }.joined(separator: "/")
        guard let (_, outputs) = Self.collected(task), let file = outputs.files.first(where: { $0.path == path }) else {
            throw APIError(.notFound, code: "file_not_found", "task \(task.id.uuidString.lowercased()) has no collected file \(path)")
        }
        let bytes = try await Self.contents(of: file.sha256, in: try store())
        return Self.serve(bytes, request: request, contentType: Self.contentType(of: path), etag: file.sha256)
    }

    @Sendable func archive(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let task = try await service.task(try context.parameters.require("id"), principal: try context.requirePrincipal())
        var tar = TarWriter()
        if let (_, outputs) = Self.collected(task) {
            let blobs = try store()
            let modified = Int(task.finishedAt?.timeIntervalSince1970 ?? 0)
            for file in outputs.files {
                tar.add(path: file.path, contents: try await Self.contents(of: file.sha256, in: blobs), mode: file.mode, modifiedAt: modified)
            }
        }
        let name = "task-\(task.id.uuidString.lowercased())-files.tar.gz"
        return Response(
            status: .ok,
            headers: [.contentType: "application/gzip", .contentDisposition: "attachment; filename=\"\(name)\""],
            body: .init(byteBuffer: ByteBuffer(bytes: Gzip.compress(tar.archive()))))
    }

    /// The bytes, whole or the one range asked for (206, or 416 when it lies outside them).
    static func serve(_ bytes: [UInt8], request: Request, contentType: String, etag: String) -> Response {
        var headers: HTTPFields = [.contentType: contentType, .acceptRanges: "bytes", .eTag: "\"\(etag)\""]
        switch ByteRange.parse(request.headers[.range], size: bytes.count) {
        case .whole:
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .partial(let lower, let upper):
            headers[.contentRange] = "bytes \(lower)-\(upper)/\(bytes.count)"
            return Response(status: .partialContent, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes[lower...upper])))
        case .unsatisfiable:
            var error = APIError(.rangeNotSatisfiable, code: "range_not_satisfiable", "the file has \(bytes.count) bytes")
            error.headers[.contentRange] = "bytes */\(bytes.count)"
            return error.response()
        }
    }

    /// By extension; unknown ones are octet-stream, so nothing is sniffed as HTML.
    static func contentType(of path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "txt", "log", "out", "csv", "tsv", "md": return ext == "csv" ? "text/csv; charset=utf-8" : "text/plain; charset=utf-8"
        case "json": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "pdf": return "application/pdf"
        case "html", "htm": return "text/plain; charset=utf-8"  // never rendered as a page of the API's origin
        default: return "application/octet-stream"
        }
    }
}
