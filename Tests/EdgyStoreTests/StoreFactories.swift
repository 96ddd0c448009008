import EdgyAuth
import EdgyModel
import EdgyStore
import EdgyPostgresTestSupport
import EdgyStorePostgres
@testable import EdgyStoreSQLite
import EdgyTestSupport
import Foundation
import GRDB
import Testing

/// A store under test, and what to do when the test is done with it.
struct OpenedStore: Sendable {
    var tasks: any TaskStore
    var tokens: any TokenStore
    var close: @Sendable () -> Void = {}
    /// Replaces the stored bytes of blob `sha256` with others, as a disk or a careless operator would.
    var corruptBlob: @Sendable (String) async throws -> Void = { _ in }
}

/// One implementation of the store protocols, as a contract-suite argument. Another
/// implementation joins the suite by appending a factory to `all` (a PostgreSQL one would
/// create a fresh schema or database per `open()` and drop it in `close`).
struct StoreFactory: Sendable, CustomTestStringConvertible {
    var name: String
    var open: @Sendable () async throws -> OpenedStore

    var testDescription: String { name }

    static let memory = StoreFactory(name: "memory") {
        let store = InMemoryTaskStore()
        return OpenedStore(tasks: store, tokens: InMemoryTokenStore(), corruptBlob: { sha256 in
            await store.corruptBlob(sha256: sha256, with: Array("not what it was".utf8))
        })
    }

    static let sqlite = StoreFactory(name: "sqlite") {
        let directory = TemporaryDirectory()
        let store = try SQLiteTaskStore(path: directory.path + "/edgy.sqlite")
        return OpenedStore(tasks: store, tokens: store, close: { directory.remove() }, corruptBlob: { sha256 in
            // A large blob's file on disk, or a small one's row: one byte flipped.
            let path = "\(directory.path)/blobs/\(sha256.prefix(2))/\(sha256.dropFirst(2).prefix(2))/\(sha256)"
            if FileManager.default.fileExists(atPath: path) {
                var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                bytes[0] ^= 0xff
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            } else {
                try await store.pool.write { db in
                    try db.execute(sql: """
                        UPDATE blob_bytes SET data = CAST('damaged' AS BLOB) WHERE id = (SELECT bytes_id FROM blobs WHERE sha256 = ?)
                        """, arguments: [sha256])
                }
            }
        })
    }

    /// A fresh database on the test PostgreSQL server (started by the tests when
    /// `EDGY_TEST_POSTGRES_URL` is not set).
    static let postgres = StoreFactory(name: "postgres") {
        let (store, database, close) = try await PostgresTestServer.openStore()
        return OpenedStore(tasks: store, tokens: store, close: close, corruptBlob: { sha256 in
            guard BlobDigest.isHex(sha256) else { return }
            try await PostgresTestServer.execute(
                "UPDATE blob_chunks SET data = 'damaged'::bytea WHERE sha256 = '\(sha256)' AND seq = 0", database: database)
        })
    }

    /// PostgreSQL only where there is one (CI has it and runs the PostgreSQL suites, which are
    /// skipped, and so fail CI, where there is not).
    static let all: [StoreFactory] = [.memory, .sqlite] + (TestHost.hasPostgres ? [.postgres] : [])

    /// Opens a store, runs `body` on it, and closes the store whether `body` throws or not.
    func run(_ body: (OpenedStore) async throws -> Void) async throws {
        let store = try await open()
        defer { store.close() }
        try await body(store)
    }
}

/// A fresh directory under the system's temporary directory.
struct TemporaryDirectory: Sendable {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.path + "/edgy-store-tests-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
