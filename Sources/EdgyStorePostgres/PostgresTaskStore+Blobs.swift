import EdgyModel
import EdgyStore
import Foundation
import NIOCore
import PostgresNIO

/// Blobs in PostgreSQL, so that any host serves any task's files. Every change is one transaction;
/// a reference is only added under a `FOR KEY SHARE` lock of the blob's row, and garbage collection
/// deletes only rows it locked `FOR UPDATE` and found unreferenced: the two never cross.
extension PostgresTaskStore: BlobStore {
    static let chunkBytes = 1 << 20

    static func tenantReferences(sha256: String, tenant: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.query("""
            SELECT 1 WHERE EXISTS (SELECT 1 FROM blob_uploads WHERE tenant = \(tenant) AND sha256 = \(sha256))
                OR EXISTS (SELECT 1 FROM task_blobs WHERE tenant = \(tenant) AND sha256 = \(sha256))
            """, logger: logger).collect().count > 0
    }

    /// The blob's row, inserted with its chunks if missing, and locked against collection.
    private func ensureBlob(_ sha256: String, _ bytes: [UInt8], now: Date, on connection: PostgresConnection) async throws -> StoredBlob {
        let inserted = try await connection.query("""
            INSERT INTO blobs (sha256, size, created_at) VALUES (\(sha256), \(Int64(bytes.count)), \(now.micros))
            ON CONFLICT (sha256) DO NOTHING RETURNING sha256
            """, logger: logger).collect()
        if !inserted.isEmpty {
            var seq = 0
            var offset = 0
            repeat {
                let end = min(offset + Self.chunkBytes, bytes.count)
                try await connection.query("""
                    INSERT INTO blob_chunks (sha256, seq, data) VALUES (\(sha256), \(seq), \(ByteBuffer(bytes: bytes[offset..<end])))
                    """, logger: logger)
                seq += 1
                offset = end
            } while offset < bytes.count
        }
        let rows = try await connection.query(
            "SELECT size, created_at FROM blobs WHERE sha256 = \(sha256) FOR KEY SHARE", logger: logger).collect()
        guard let row = rows.first else {
            // Collected between the insert and the lock; the caller's transaction is retried.
            throw BlobRowVanished()
        }
        let (size, created) = try row.decode((Int64, Int64).self)
        return StoredBlob(sha256: sha256, size: size, createdAt: Date(micros: created))
    }

    private struct BlobRowVanished: Error {}

    /// Runs `body` in a transaction, once more if a blob it needed was collected meanwhile.
    private func retryingVanished<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await transaction(body)
        } catch is BlobRowVanished {
            return try await transaction(body)
        }
    }

    public func putUpload(sha256: String, bytes: [UInt8], tenant: String, maxBytes: Int64?, now: Date) async throws -> (blob: StoredBlob, created: Bool) {
        try await retryingVanished { connection in
            if let maxBytes, try await !Self.tenantReferences(sha256: sha256, tenant: tenant, on: connection, logger: self.logger) {
                // Serializes quota checks with task creation's, so two requests cannot both take the last bytes.
                try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresMigrations.lockKey + 1))", logger: self.logger)
                let usage = try await self.tenantUsage(tenant: tenant, on: connection).bytes
                if let violation = StoreError.blobQuota(tenant: tenant, usage: usage, adding: Int64(bytes.count), max: maxBytes) {
                    throw violation
                }
            }
            let blob = try await self.ensureBlob(sha256, bytes, now: now, on: connection)
            let created = try await connection.query("""
                INSERT INTO blob_uploads (tenant, sha256, created_at) VALUES (\(tenant), \(sha256), \(now.micros))
                ON CONFLICT DO NOTHING RETURNING sha256
                """, logger: self.logger).collect()
            return (blob, !created.isEmpty)
        }
    }

    public func blob(sha256: String, tenant: String) async throws -> StoredBlob? {
        let rows = try await query("""
            SELECT size, created_at FROM blobs b WHERE sha256 = \(sha256)
              AND (EXISTS (SELECT 1 FROM blob_uploads WHERE tenant = \(tenant) AND sha256 = b.sha256)
                   OR EXISTS (SELECT 1 FROM task_blobs WHERE tenant = \(tenant) AND sha256 = b.sha256))
            """)
        guard let row = rows.first else { return nil }
        let (size, created) = try row.decode((Int64, Int64).self)
        return StoredBlob(sha256: sha256, size: size, createdAt: Date(micros: created))
    }

    public func blobContents(sha256: String) async throws -> [UInt8]? {
        let rows = try await query("""
            SELECT b.size, c.data FROM blobs b LEFT JOIN blob_chunks c ON c.sha256 = b.sha256
            WHERE b.sha256 = \(sha256) ORDER BY c.seq
            """)
        guard !rows.isEmpty else { return nil }
        var bytes: [UInt8] = []
        for row in rows {
            let (_, chunk) = try row.decode((Int64, ByteBuffer?).self)
            if let chunk { bytes.append(contentsOf: chunk.readableBytesView) }
        }
        guard BlobDigest.sha256Hex(bytes) == sha256 else {
            logger.error("a blob does not match its digest", metadata: ["sha256": "\(sha256)"])
            throw BlobCorruptedError(sha256: sha256)
        }
        return bytes
    }

    public func deleteUpload(sha256: String, tenant: String) async throws -> Bool {
        try await !query("DELETE FROM blob_uploads WHERE tenant = \(tenant) AND sha256 = \(sha256) RETURNING sha256").isEmpty
    }

    public func storeOutputs(taskID: UUID, tenant: String, contents: [String: [UInt8]], now: Date) async throws {
        // An attempt's hundred small files are four statements, not four hundred round trips:
        // the rows, the chunks of the rows that were new, the lock, the references.
        let hashes = contents.keys.sorted()
        try await retryingVanished { connection in
            let inserted = try await connection.query("""
                INSERT INTO blobs (sha256, size, created_at)
                SELECT sha256, size, \(now.micros) FROM unnest(\(hashes)::text[], \(hashes.map { Int64(contents[$0]!.count) })::bigint[]) AS t(sha256, size)
                ON CONFLICT (sha256) DO NOTHING RETURNING sha256
                """, logger: self.logger).collect()
            var chunkHashes: [String] = [], chunkSeqs: [Int64] = [], chunkData: [ByteBuffer] = []
            for row in inserted {
                let sha256 = try row.decode(String.self)
                let bytes = contents[sha256]!
                var offset = 0
                repeat {
                    let end = min(offset + Self.chunkBytes, bytes.count)
                    chunkHashes.append(sha256)
                    chunkSeqs.append(Int64(chunkHashes.count))
                    chunkData.append(ByteBuffer(bytes: bytes[offset..<end]))
                    offset = end
                } while offset < bytes.count
            }
            if !chunkHashes.isEmpty {
                // seq only orders a blob's chunks: increasing within each blob is all a read needs.
                try await connection.query("""
                    INSERT INTO blob_chunks (sha256, seq, data)
                    SELECT * FROM unnest(\(chunkHashes)::text[], \(chunkSeqs)::int[], \(chunkData)::bytea[])
                    """, logger: self.logger)
            }
            let locked = try await connection.query(
                "SELECT sha256 FROM blobs WHERE sha256 = ANY(\(hashes)::text[]) FOR KEY SHARE", logger: self.logger).collect()
            // Collected between the insert and the lock: the transaction is retried.
            guard locked.count == hashes.count else { throw BlobRowVanished() }
            // A task deleted meanwhile refers to nothing (the join finds no task).
            try await connection.query("""
                INSERT INTO task_blobs (task_id, sha256, tenant)
                SELECT t.id, h.sha256, \(tenant) FROM tasks t, unnest(\(hashes)::text[]) AS h(sha256) WHERE t.id = \(taskID)
                ON CONFLICT DO NOTHING
                """, logger: self.logger)
        }
    }

    public func collectGarbage(uploadsBefore: Date) async throws -> Int {
        try await transaction { connection in
            try await connection.query("DELETE FROM blob_uploads WHERE created_at < \(uploadsBefore.micros)", logger: self.logger)
            // Rows another transaction is referring to right now are locked: skipped, not waited for.
            let rows = try await connection.query("""
                WITH dead AS (
                    SELECT sha256 FROM blobs b
                    WHERE NOT EXISTS (SELECT 1 FROM blob_uploads u WHERE u.sha256 = b.sha256)
                      AND NOT EXISTS (SELECT 1 FROM task_blobs t WHERE t.sha256 = b.sha256)
                    FOR UPDATE SKIP LOCKED
                )
                DELETE FROM blobs b USING dead WHERE b.sha256 = dead.sha256
                  AND NOT EXISTS (SELECT 1 FROM blob_uploads u WHERE u.sha256 = b.sha256)
                  AND NOT EXISTS (SELECT 1 FROM task_blobs t WHERE t.sha256 = b.sha256)
                RETURNING b.sha256
                """, logger: self.logger).collect()
            return rows.count
        }
    }
}
