import Foundation
import Synchronization

/// Wakes whoever waits on a task (`?wait`, SSE) when the task changes, in this process. Across
/// hosts, a store feeds it from its own notifications (PostgreSQL LISTEN/NOTIFY); waiters also
/// poll at a slow pace, so a missed wake-up costs latency, never correctness.
public final class TaskNotifier: Sendable {
    /// What changed, so that a listener wakes only for what it acts on: an idle worker for work it
    /// can claim, a `?wait` request for the end, a running attempt's heartbeat for a cancel.
    public enum Change: Sendable, Hashable {
        /// Claimable now: created, or back in the queue.
        case queued
        /// Claimed by a worker.
        case running
        /// New output events.
        case output
        case cancelRequested
        /// Reached a final status, or deleted.
        case ended
        /// Not known (a notice from an older edgyd): any of the above.
        case unknown
    }

    private struct Waiter {
        var taskID: UUID?
        var kinds: Set<Change>?
        var deliver: @Sendable (UUID) -> Void
    }

    /// Keyed by a counter: a `UUID()` costs an open, a read and a close of /dev/urandom, twice
    /// per `?wait` request (its waiter and the worker's), and a key needs no randomness.
    private let waiters = Mutex<(next: UInt64, byKey: [UInt64: Waiter])>((0, [:]))

    /// Tasks that just reached a final status in this process, as recorded, kept only while a
    /// request waits for that very task: it takes the record instead of reading it back. A record
    /// carries the task's files and output, so both their number and their bytes are bounded; a
    /// record over the bounds is simply not kept (the waiter reads the store).
    private let finished = Mutex<(records: [UUID: FinishedTask], order: [UUID], bytes: Int64)>(([:], [], 0))
    static let finishedKept = 64
    static let finishedBytesKept: Int64 = 16 << 20

    public init() {}

    /// A task as it was stored with a final status, with its last report's JSON when the worker
    /// encoded it (`AttemptReport.json()`), so that an answer need not encode it again.
    public struct FinishedTask: Sendable {
        public var record: TaskRecord
        public var lastReportJSON: [UInt8]?

        public init(record: TaskRecord, lastReportJSON: [UInt8]? = nil) {
            self.record = record
            self.lastReportJSON = lastReportJSON
        }

        var storedBytes: Int64 { record.storedBytes + Int64(lastReportJSON?.count ?? 0) }
    }

    /// Announces that `record` was stored with a final status, then that it ended.
    public func finished(_ record: TaskRecord, lastReportJSON: [UInt8]? = nil) {
        let entry = FinishedTask(record: record, lastReportJSON: lastReportJSON)
        let size = entry.storedBytes
        let awaited = waiters.withLock { $0.byKey.values.contains { $0.taskID == record.id } }
        if awaited && size <= Self.finishedBytesKept {
            finished.withLock { kept in
                if let old = kept.records.updateValue(entry, forKey: record.id) {
                    kept.bytes -= old.storedBytes
                } else {
                    kept.order.append(record.id)
                }
                kept.bytes += size
                while kept.order.count > Self.finishedKept || kept.bytes > Self.finishedBytesKept {
                    if let dropped = kept.records.removeValue(forKey: kept.order.removeFirst()) { kept.bytes -= dropped.storedBytes }
                }
            }
        }
        changed(record.id, .ended)
    }

    /// Takes what `finished(_:lastReportJSON:)` kept for `taskID`, if it did.
    public func takeFinished(_ taskID: UUID) -> FinishedTask? {
        finished.withLock { kept in
            guard let finished = kept.records.removeValue(forKey: taskID) else { return nil }
            kept.order.removeAll { $0 == taskID }
            kept.bytes -= finished.storedBytes
            return finished
        }
    }

    /// Announces that `taskID` changed, and how.
    public func changed(_ taskID: UUID, _ change: Change) {
        let targets = waiters.withLock { waiters in
            waiters.byKey.values.filter { waiter in
                (waiter.taskID == nil || waiter.taskID == taskID)
                    && (change == .unknown || waiter.kinds.map { $0.contains(change) } ?? true)
            }.map(\.deliver)
        }
        for deliver in targets { deliver(taskID) }
    }

    /// A stream of change notices for one task (or every task when nil), of the given kinds (all
    /// when nil; `unknown` always comes through). It ends when the consuming task is cancelled or
    /// the stream is dropped.
    public func changes(of taskID: UUID?, only kinds: Set<Change>? = nil) -> AsyncStream<UUID> {
        changeStream(of: taskID, only: kinds).stream
    }

    /// `changes(of:only:)` with the stream's continuation, so that a waiter can add wake-ups of its
    /// own (a backstop poll) to the same stream instead of relaying both through another one.
    public func changeStream(
        of taskID: UUID?, only kinds: Set<Change>? = nil
    ) -> (stream: AsyncStream<UUID>, continuation: AsyncStream<UUID>.Continuation) {
        let (stream, continuation) = AsyncStream<UUID>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let key = subscribe(to: taskID, only: kinds) { continuation.yield($0) }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(key) }
        return (stream, continuation)
    }

    /// Calls `handler` with the task's id on each change of `taskID` (every task when nil) of the
    /// given kinds, on the announcing thread (so it must return quickly), until `unsubscribe(_:)`
    /// with the key returned. For a listener that only sets a flag or wakes a sleeper: a stream
    /// would need a task of its own to drain it.
    public func subscribe(to taskID: UUID?, only kinds: Set<Change>? = nil, _ handler: @escaping @Sendable (UUID) -> Void) -> UInt64 {
        waiters.withLock { w -> UInt64 in
            w.next += 1
            w.byKey[w.next] = Waiter(taskID: taskID, kinds: kinds, deliver: handler)
            return w.next
        }
    }

    public func unsubscribe(_ key: UInt64) {
        _ = waiters.withLock { $0.byKey.removeValue(forKey: key) }
    }
}
