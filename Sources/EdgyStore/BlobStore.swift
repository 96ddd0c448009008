import EdgyModel
import Foundation

/// A blob as stored: content-addressed, so one copy serves every tenant and task that refers to it.
public struct StoredBlob: Sendable, Hashable {
    /// Lower-case hex.
    public var sha256: String
    public var size: Int64
    public var createdAt: Date

    public init(sha256: String, size: Int64, createdAt: Date) {
        self.sha256 = sha256
        self.size = size
        self.createdAt = createdAt
    }
}

/// A blob whose bytes no longer match their name: never served.
public struct BlobCorruptedError: Error, Sendable, Hashable, CustomStringConvertible {
    public let sha256: String
    public init(sha256: String) { self.sha256 = sha256 }
    public var description: String { "blob sha256:\(sha256) does not match its digest" }
}

/// The content-addressed store of files that tasks send and collect, kept by the task store
/// itself so that a blob's references live and die in the same transactions as the tasks that
/// hold them. Every implementation passes the same contract suite.
///
/// A blob lives as long as something refers to it:
/// - an **upload** (`POST /v1/blobs`) by a tenant, until the tenant deletes it or it is older than
///   the retention period;
/// - a **task**: a file it was given by reference, or a file one of its attempts collected; the
///   reference goes with the task (`delete`, `purgeFinished`).
/// `collectGarbage` deletes a blob once nothing refers to it. A tenant sees only the blobs it
/// refers to, and its byte quota counts each of them once.
public protocol BlobStore: Sendable {
    /// Stores `bytes` (whose SHA-256 is `sha256`, computed by the caller) as an upload of `tenant`.
    /// Idempotent: the bytes are stored once, whoever uploads them. Refused with
    /// `StoreError.quotaExceeded` when the tenant does not refer to the blob yet and it would take
    /// the tenant's bytes (`TenantUsage.bytes`) over `maxBytes`.
    ///
    /// - Returns: The blob, and whether the tenant's upload is new.
    func putUpload(sha256: String, bytes: [UInt8], tenant: String, maxBytes: Int64?, now: Date) async throws -> (blob: StoredBlob, created: Bool)

    /// The blob, if `tenant` refers to it (its upload, or a file of one of its tasks); nil otherwise,
    /// so a tenant learns nothing of other tenants' blobs.
    func blob(sha256: String, tenant: String) async throws -> StoredBlob?

    /// The blob's bytes, checked against its name: `BlobCorruptedError` when they do not match.
    /// nil when there is no such blob.
    func blobContents(sha256: String) async throws -> [UInt8]?

    /// Removes `tenant`'s upload of the blob. The blob itself goes when nothing else refers to it.
    func deleteUpload(sha256: String, tenant: String) async throws -> Bool

    /// Stores the files an attempt of `taskID` collected (bytes by sha256), referred to by the task.
    /// A task deleted meanwhile keeps nothing: its blobs are garbage.
    func storeOutputs(taskID: UUID, tenant: String, contents: [String: [UInt8]], now: Date) async throws

    /// Removes uploads made before `uploadsBefore`, then deletes every blob that nothing refers to.
    /// Returns how many blobs were deleted.
    func collectGarbage(uploadsBefore: Date) async throws -> Int
}
