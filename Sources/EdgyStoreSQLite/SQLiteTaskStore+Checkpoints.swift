import GRDB
import Synchronization

// WAL checkpoints off the write path.
//
// By default the connection that commits past 1,000 WAL pages copies them into the database
// file then and there, with two fdatasyncs (about 5 ms here, every 25 tasks or so), holding
// the write lock while every other write waits; and the commits of a create and a finish run on
// the concurrency runtime's own threads. A connection of the checkpointer's own does the copying
// instead: a PASSIVE checkpoint takes no write lock, so commits go on meanwhile.
extension SQLiteTaskStore {
    /// The writer's own checkpoints while `checkpointContinuously` runs: a backstop at 10,000
    /// pages (40 MB of WAL) should the checkpointer fall behind, say behind a long read.
    static let backstopCheckpointPages = 10_000
    /// SQLite's default threshold, restored when the checkpointer stops.
    static let defaultCheckpointPages = 1_000

    /// Copies the WAL into the database file every `interval`, from a connection of its own,
    /// until cancelled (edgyd runs it beside its services). A checkpoint that cannot run (another
    /// is under way: `close`'s, another process's) is left to the next turn.
    ///
    /// - Throws: only when it cannot start (its connection, the writer's threshold); commits
    ///   then checkpoint as SQLite does by default.
    public func checkpointContinuously(every interval: Duration = .milliseconds(100)) async throws {
        let checkpointer = try DatabaseQueue(path: path, configuration: configuration)
        try setWriterCheckpointPages(Self.backstopCheckpointPages)
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { break }
            // nil: the main database and the attached blob bytes alike.
            let done = try? await checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive, on: nil) }
            if done != nil { checkpointsDone.add(1, ordering: .relaxed) }
        }
        // Blocking: this task is cancelled, and an async write would refuse to start.
        try? setWriterCheckpointPages(Self.defaultCheckpointPages)
        try? checkpointer.close()
    }

    /// Checkpoints `checkpointContinuously` has completed so far.
    public var backgroundCheckpoints: Int { checkpointsDone.load(ordering: .relaxed) }

    private func setWriterCheckpointPages(_ pages: Int) throws {
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = \(pages)") }
    }
}
