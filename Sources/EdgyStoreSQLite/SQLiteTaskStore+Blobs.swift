import EdgyModel
import EdgyStore
import Foundation
import GRDB
import GRDBSQLite

/// Blobs: rows here; a small blob's bytes in a row of `blobdata.blob_bytes` (one transaction
/// stores an attempt's hundred small files, where a file each would cost a hundred file creations
/// and renames), a large one's in `BlobDirectory`. A file moves into place and its row is written in one write transaction,
/// and garbage collection deletes rows and files in one too: SQLite runs write transactions one at
/// a time, so an upload can never see a blob that collection is removing, or leave a row whose file
/// collection removed.
extension SQLiteTaskStore: BlobStore {
    /// Blobs up to this size are kept in their row (SQLite reads and writes such blobs faster than
    /// the filesystem does files).
    static let inlineBlobBytes = 64 << 10

    static func tenantReferences(_ db: Database, sha256: String, tenant: String) throws -> Bool {
        try Int.fetchOne(db.cachedStatement(sql: """
            SELECT 1 WHERE EXISTS (SELECT 1 FROM blob_uploads WHERE tenant = ? AND sha256 = ?)
                OR EXISTS (SELECT 1 FROM task_blobs INDEXED BY task_blobs_by_tenant WHERE tenant = ? AND sha256 = ?)
            """), arguments: [tenant, sha256, tenant, sha256]) != nil
    }

    /// Stages a large blob's bytes unless its file exists; the caller commits (or discards) them in
    /// its transaction. Small blobs go in their row: nothing to stage.
    private func stageIfMissing(_ sha256: String, _ bytes: [UInt8], sync: Bool = true) throws -> String? {
        bytes.count <= Self.inlineBlobBytes || blobFiles.exists(sha256) ? nil : try blobFiles.stage(bytes, sync: sync)
    }

    /// In a write transaction: the row of the blob (with its bytes when small), and a large
    /// blob's file if it was missing.
    private func ensureBlob(_ db: Database, _ sha256: String, _ bytes: [UInt8], staged: String?, now: Int64, sync: Bool = true) throws {
        let inline = bytes.count <= Self.inlineBlobBytes
        if let staged {
            try blobFiles.commit(staged, as: sha256, sync: sync)
        } else if !inline, !blobFiles.exists(sha256) {
            // Collected between the check and this transaction: the caller stages again.
            throw BlobVanished()
        }
        if inline {
            try Self.storeInline(db, [(sha256, bytes)], now: now)
        } else {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO blobs (sha256, size, created_at, inline) VALUES (?, ?, ?, 0)")
                .execute(arguments: [sha256, bytes.count, now])
        }
    }

    private struct BlobVanished: Error {}

    public func putUpload(sha256: String, bytes: [UInt8], tenant: String, maxBytes: Int64?, now: Date) async throws -> (blob: StoredBlob, created: Bool) {
        var staged = try stageIfMissing(sha256, bytes)
        for _ in 0..<2 {
            let stagedNow = staged
            do {
                return try await transaction { db in
                    if let maxBytes, try !Self.tenantReferences(db, sha256: sha256, tenant: tenant) {
                        let usage = try Self.tenantUsage(db, tenant: tenant).bytes
                        if let violation = StoreError.blobQuota(tenant: tenant, usage: usage, adding: Int64(bytes.count), max: maxBytes) {
                            throw violation
                        }
                    }
                    try self.ensureBlob(db, sha256, bytes, staged: stagedNow, now: now.micros)
                    try db.cachedStatement(sql: "INSERT OR IGNORE INTO blob_uploads (tenant, sha256, created_at) VALUES (?, ?, ?)")
                        .execute(arguments: [tenant, sha256, now.micros])
                    let created = db.changesCount > 0
                    let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT size, created_at FROM blobs WHERE sha256 = ?"), arguments: [sha256])!
                    return (StoredBlob(sha256: sha256, size: row[0], createdAt: Date(micros: row[1])), created)
                }
            } catch is BlobVanished {
                staged = try blobFiles.stage(bytes)
            } catch {
                if let stagedNow { blobFiles.discard(stagedNow) }
                throw error
            }
        }
        if let staged { blobFiles.discard(staged) }
        throw SQLiteStoreError("blob sha256:\(sha256) was removed twice while it was being uploaded")
    }

    public func blob(sha256: String, tenant: String) async throws -> StoredBlob? {
        try await pool.read { db in
            guard try Self.tenantReferences(db, sha256: sha256, tenant: tenant),
                  let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT size, created_at FROM blobs WHERE sha256 = ?"), arguments: [sha256])
            else { return nil }
            return StoredBlob(sha256: sha256, size: row[0], createdAt: Date(micros: row[1]))
        }
    }

    public func blobContents(sha256: String) async throws -> [UInt8]? {
        guard BlobDigest.isHex(sha256) else { return nil }
        // (exists, inline, the bytes of a small blob)
        let found = try await pool.read { db -> (Bool, Bool, Data?) in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT b.inline, d.data FROM blobs b LEFT JOIN blob_bytes d ON d.id = b.bytes_id WHERE b.sha256 = ?
                """), arguments: [sha256]) else {
                return (false, false, nil)
            }
            return (true, row[0], row[1] as Data?)
        }
        guard found.0 else { return nil }
        guard found.1 else { return try blobFiles.read(sha256) }
        // A small blob whose bytes are gone is as unservable as a damaged one.
        let bytes = found.2.map { [UInt8]($0) } ?? []
        guard BlobDigest.sha256Hex(bytes) == sha256 else { throw BlobCorruptedError(sha256: sha256) }
        return bytes
    }

    public func deleteUpload(sha256: String, tenant: String) async throws -> Bool {
        try await transaction { db in
            try db.cachedStatement(sql: "DELETE FROM blob_uploads WHERE tenant = ? AND sha256 = ?").execute(arguments: [tenant, sha256])
            return db.changesCount > 0
        }
    }

    public func storeOutputs(taskID: UUID, tenant: String, contents: [String: [UInt8]], now: Date) async throws {
        // An attempt's files are as durable as the rest of its record: the database commits with
        // synchronous = NORMAL (a killed process loses nothing, a power loss may lose the last
        // moments), so they are written and renamed without an fsync each (100 files would cost
        // 100 journal commits). A file a power loss damaged fails its hash check: never served.
        var staged: [String: String] = [:]
        for (sha256, bytes) in contents {
            if let file = try stageIfMissing(sha256, bytes, sync: false) { staged[sha256] = file }
        }
        let stagedNow = staged
        do {
            try await transaction { db in
                var small: [(String, [UInt8])] = []
                for (sha256, bytes) in contents {
                    guard bytes.count > Self.inlineBlobBytes else {
                        small.append((sha256, bytes))
                        continue
                    }
                    if stagedNow[sha256] == nil, !self.blobFiles.exists(sha256) {
                        // Collected meanwhile: write it again, here (rare).
                        try self.blobFiles.commit(try self.blobFiles.stage(bytes, sync: false), as: sha256, sync: false)
                    }
                    try self.ensureBlob(db, sha256, bytes, staged: stagedNow[sha256], now: now.micros, sync: false)
                }
                try Self.storeInline(db, small, now: now.micros)
                // A task deleted meanwhile refers to nothing; its blobs are garbage.
                guard try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM tasks WHERE id = ?"), arguments: [taskID.uuidString]) != nil else { return }
                let refer = try RawStatement(db, "INSERT OR IGNORE INTO task_blobs (task_id, sha256, tenant) VALUES (?, ?, ?)")
                refer.bind(1, taskID.uuidString)
                refer.bind(3, tenant)
                for sha256 in contents.keys {
                    refer.bind(2, sha256)
                    _ = try refer.step()
                    refer.reset()
                }
            }
        } catch {
            for file in stagedNow.values { blobFiles.discard(file) }
            throw error
        }
    }

    /// Small blobs not stored yet: their bytes appended to `blob_bytes`, then their rows. A stored
    /// blob whose bytes went missing gets them back. (Raw statements: for an attempt's hundred
    /// files, GRDB's argument arrays cost more than SQLite's own work.)
    static func storeInline(_ db: Database, _ blobs: [(String, [UInt8])], now: Int64) throws {
        let lookup = try RawStatement(db, """
            SELECT NOT b.inline OR d.id IS NOT NULL FROM blobs b LEFT JOIN blob_bytes d ON d.id = b.bytes_id WHERE b.sha256 = ?
            """)
        let append = try RawStatement(db, "INSERT INTO blob_bytes (data) VALUES (?)")
        let insert = try RawStatement(db, "INSERT INTO blobs (sha256, size, created_at, inline, bytes_id) VALUES (?, ?, ?, 1, ?)")
        for (sha256, bytes) in blobs {
            lookup.bind(1, sha256)
            // nil: no such blob; false: its bytes went missing.
            var hasBytes: Bool?
            if try lookup.step() { hasBytes = lookup.bool(0) }
            lookup.reset()
            if hasBytes == true { continue }
            try bytes.withUnsafeBytes { data in
                // SQLITE_STATIC: the bytes stay valid until the step returns, which is all SQLite needs.
                append.bindStatic(1, data)
                _ = try append.step()
                append.reset()
            }
            let id = sqlite3_last_insert_rowid(db.sqliteConnection)
            if hasBytes == nil {
                insert.bind(1, sha256)
                insert.bind(2, Int64(bytes.count))
                insert.bind(3, now)
                insert.bind(4, id)
                _ = try insert.step()
                insert.reset()
            } else {
                try db.cachedStatement(sql: "UPDATE blobs SET bytes_id = ? WHERE sha256 = ?").execute(arguments: [id, sha256])
            }
        }
    }

    public func collectGarbage(uploadsBefore: Date) async throws -> Int {
        try await transaction { db in
            try db.cachedStatement(sql: "DELETE FROM blob_uploads WHERE created_at < ?").execute(arguments: [uploadsBefore.micros])
            let dead = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT sha256, NOT inline, bytes_id FROM blobs b
                WHERE NOT EXISTS (SELECT 1 FROM blob_uploads u WHERE u.sha256 = b.sha256)
                  AND NOT EXISTS (SELECT 1 FROM task_blobs t WHERE t.sha256 = b.sha256)
                """))
            let delete = try db.cachedStatement(sql: "DELETE FROM blobs WHERE sha256 = ?")
            let deleteBytes = try db.cachedStatement(sql: "DELETE FROM blob_bytes WHERE id = ?")
            for row in dead {
                let sha256: String = row[0]
                try delete.execute(arguments: [sha256])
                if let bytesID = row[2] as Int64? { try deleteBytes.execute(arguments: [bytesID]) }
                if row[1] as Bool { self.blobFiles.remove(sha256) }
            }
            return dead.count
        }
    }
}
