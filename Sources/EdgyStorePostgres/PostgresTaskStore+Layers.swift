import EdgyModel
import EdgyStore
import Foundation
import NIOCore
import PostgresNIO

extension PostgresTaskStore: SharedLayerStore {
    public func layerArchive(key: String) async throws -> [UInt8]? {
        let rows = try await query("SELECT archive, sha256 FROM dependency_layers WHERE key = \(key)")
        guard let row = rows.first else { return nil }
        let (buffer, expected) = try row.decode((ByteBuffer, String).self)
        let archive = Array(buffer.readableBytesView)
        guard BlobDigest.sha256Hex(archive) == expected else {
            logger.error("a shared dependency layer does not match its checksum; installing it again", metadata: ["key": "\(key)"])
            return nil
        }
        return archive
    }

    public func storeLayerArchive(key: String, archive: [UInt8]) async throws {
        try await query("""
            INSERT INTO dependency_layers (key, archive, sha256, bytes, created_at)
            VALUES (\(key), \(ByteBuffer(bytes: archive)), \(BlobDigest.sha256Hex(archive)), \(Int64(archive.count)), \(Date().micros))
            ON CONFLICT (key) DO NOTHING
            """)
    }
}
