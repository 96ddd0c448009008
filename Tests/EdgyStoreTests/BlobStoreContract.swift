import EdgyModel
import EdgyStore
import Foundation
import Testing

/// What every `BlobStore` must do, against memory, SQLite (bytes in files) and PostgreSQL (bytes in
/// chunks): content-addressed and deduplicated, scoped to tenants, counted by quotas, collected
/// exactly when nothing refers to a blob, and never served corrupted.
struct BlobStoreContract {
    let opened: OpenedStore
    var tasks: any TaskStore { opened.tasks }
    var blobs: any BlobStore { opened.tasks as! any BlobStore }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func put(_ text: String, tenant: String = "acme", max: Int64? = nil, at seconds: Int64 = 0) async throws -> (blob: StoredBlob, created: Bool) {
        let bytes = Self.bytes(text)
        return try await blobs.putUpload(sha256: BlobDigest.sha256Hex(bytes), bytes: bytes, tenant: tenant, maxBytes: max, now: T.at(seconds))
    }

    func task(_ tenant: String = "acme", blob: String? = nil, at seconds: Int64 = 0) -> TaskRecord {
        var record = T.task(tenant: tenant, at: seconds)
        if let blob { record.spec.files.append(TaskFile(path: "data.bin", blob: blob)) }
        return record
    }

    func uploadsAreIdempotentAndDeduplicated() async throws {
        let first = try await put("hello, blob")
        let again = try await put("hello, blob", at: 5)
        #expect(first.created && !again.created)
        #expect(first.blob == again.blob)
        #expect(first.blob.sha256 == BlobDigest.sha256Hex(Self.bytes("hello, blob")) && first.blob.size == 11)
        // Another tenant's upload of the same bytes is its own reference to the one blob.
        let theirs = try await put("hello, blob", tenant: "initech", at: 9)
        #expect(theirs.created && theirs.blob == first.blob)
        #expect(try await blobs.blobContents(sha256: first.blob.sha256) == Self.bytes("hello, blob"))
        #expect(try await blobs.blobContents(sha256: String(repeating: "0", count: 64)) == nil)
        // An empty blob is a blob.
        let empty = try await put("")
        #expect(empty.blob.size == 0)
        #expect(try await blobs.blobContents(sha256: empty.blob.sha256) == [])
    }

    func tenantsSeeOnlyTheirOwnBlobs() async throws {
        let mine = try await put("acme's secret")
        let sha256 = mine.blob.sha256
        #expect(try await blobs.blob(sha256: sha256, tenant: "acme") == mine.blob)
        #expect(try await blobs.blob(sha256: sha256, tenant: "initech") == nil)
        #expect(try await !blobs.deleteUpload(sha256: sha256, tenant: "initech"))
        // A task of another tenant cannot refer to it, and learns nothing from trying.
        do {
            try await tasks.create(task("initech", blob: sha256, at: 1), limits: QueueLimits())
            Issue.record("a task referred to another tenant's blob")
        } catch let error as StoreError {
            #expect(error.code == .blobNotFound && error.field == "files[1].blob")
        }
        #expect(try await tasks.list(TaskQuery(tenant: "initech")).tasks.isEmpty)
        // The owner's task can, and reads back with the reference, not the bytes.
        let record = task(blob: sha256, at: 2)
        try await tasks.create(record, limits: QueueLimits())
        let stored = try #require(try await tasks.task(id: record.id))
        #expect(stored.spec.files.last == TaskFile(path: "data.bin", blob: sha256))
    }

    func outputsAreStoredOnceAndReferencedByTheirTask() async throws {
        let a = task(at: 1), b = task(at: 2), other = task("initech", at: 3)
        for record in [a, b, other] { try await tasks.create(record, limits: QueueLimits()) }
        let plot = Self.bytes("<svg/>")
        let sha256 = BlobDigest.sha256Hex(plot)
        try await blobs.storeOutputs(taskID: a.id, tenant: "acme", contents: [sha256: plot], now: T.at(4))
        try await blobs.storeOutputs(taskID: b.id, tenant: "acme", contents: [sha256: plot], now: T.at(5))
        #expect(try await blobs.blob(sha256: sha256, tenant: "acme")?.size == 6)
        #expect(try await blobs.blob(sha256: sha256, tenant: "initech") == nil)
        #expect(try await blobs.blobContents(sha256: sha256) == plot)
        // Counted once for the tenant, however many of its tasks refer to it.
        let before = try await tasks.tenantUsage(tenant: "acme").bytes
        try await blobs.storeOutputs(taskID: a.id, tenant: "acme", contents: [sha256: plot], now: T.at(6))
        #expect(try await tasks.tenantUsage(tenant: "acme").bytes == before)
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(0)) == 0)
    }

    func garbageCollectionDeletesABlobExactlyWhenItsLastTaskGoes() async throws {
        let a = task(at: 1), b = task(at: 2)
        for record in [a, b] { try await tasks.create(record, limits: QueueLimits()) }
        let result = Self.bytes("result")
        let sha256 = BlobDigest.sha256Hex(result)
        try await blobs.storeOutputs(taskID: a.id, tenant: "acme", contents: [sha256: result], now: T.at(3))
        try await blobs.storeOutputs(taskID: b.id, tenant: "acme", contents: [sha256: result], now: T.at(3))
        #expect(try await tasks.delete(id: a.id))
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(100)) == 0)
        #expect(try await blobs.blobContents(sha256: sha256) == result)
        #expect(try await tasks.delete(id: b.id))
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(100)) == 1)
        #expect(try await blobs.blobContents(sha256: sha256) == nil)
        #expect(try await blobs.blob(sha256: sha256, tenant: "acme") == nil)

        // An upload holds its blob until it is deleted or older than the retention; a task that
        // refers to the blob holds it after that.
        let upload = try await put("input", at: 10)
        let user = task(blob: upload.blob.sha256, at: 11)
        try await tasks.create(user, limits: QueueLimits())
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(10)) == 0)
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(11)) == 0)
        #expect(try await blobs.blob(sha256: upload.blob.sha256, tenant: "acme") != nil)
        #expect(try await tasks.delete(id: user.id))
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(11)) == 1)

        let dropped = try await put("dropped", at: 20)
        #expect(try await blobs.deleteUpload(sha256: dropped.blob.sha256, tenant: "acme"))
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(0)) == 1)

        // Large blobs (which some stores keep as files) go the same way.
        let large = Array(repeating: UInt8(ascii: "L"), count: 200_000)
        let owner = task(at: 40)
        try await tasks.create(owner, limits: QueueLimits())
        try await blobs.storeOutputs(taskID: owner.id, tenant: "acme", contents: [BlobDigest.sha256Hex(large): large], now: T.at(41))
        #expect(try await blobs.blobContents(sha256: BlobDigest.sha256Hex(large)) == large)
        #expect(try await tasks.delete(id: owner.id))
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(0)) == 1)
        #expect(try await blobs.blobContents(sha256: BlobDigest.sha256Hex(large)) == nil)

        // Outputs of a task deleted before they were stored are garbage at once.
        let late = Self.bytes("too late")
        try await blobs.storeOutputs(taskID: UUID(), tenant: "acme", contents: [BlobDigest.sha256Hex(late): late], now: T.at(30))
        #expect(try await blobs.collectGarbage(uploadsBefore: T.at(0)) == 1)
    }

    func quotasCountBlobs() async throws {
        let eight = try await put("12345678", max: 10)
        #expect(eight.created)
        #expect(try await tasks.tenantUsage(tenant: "acme").bytes == 8)
        do {
            _ = try await put("abcdefgh", max: 10)
            Issue.record("a blob over the tenant's byte quota was stored")
        } catch let error as StoreError {
            #expect(error.code == .quotaExceeded && error.quota == "tenant_max_bytes")
        }
        // What the tenant already refers to costs nothing more.
        #expect(try await !put("12345678", max: 10).created)
        // Another tenant's bytes are its own.
        #expect(try await put("abcdefgh", tenant: "initech", max: 10).created)
        #expect(try await blobs.blob(sha256: BlobDigest.sha256Hex(Self.bytes("abcdefgh")), tenant: "acme") == nil)
        // Tasks' quotas count blobs too.
        do {
            var big = task(at: 1)
            big.spec.stdin = Array(repeating: 1, count: 3)
            try await tasks.create(big, limits: QueueLimits(maxBytesPerTenant: 10))
            Issue.record("a task over the byte quota (blobs counted) was stored")
        } catch let error as StoreError {
            #expect(error.code == .quotaExceeded)
        }
    }

    func corruptedBlobsAreRefused() async throws {
        // Small and large: stores may keep them differently (SQLite: in a row, in a file).
        for text in ["precious bytes", String(repeating: "large precious bytes ", count: 10_000)] {
            let stored = try await put(text)
            #expect(try await blobs.blobContents(sha256: stored.blob.sha256) == Self.bytes(text))
            try await opened.corruptBlob(stored.blob.sha256)
            await #expect(throws: BlobCorruptedError.self) { try await blobs.blobContents(sha256: stored.blob.sha256) }
        }
    }
}
