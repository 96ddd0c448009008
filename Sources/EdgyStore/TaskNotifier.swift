import Foundation
import Synchronization

/// Wakes whoever waits on a task (`?wait`, SSE) when the task changes, in this process. Across
/// hosts, a store feeds it from its own notifications (PostgreSQL LISTEN/NOTIFY); waiters also
/// poll at a slow pace, so a missed wake-up costs latency, never correctness.
public final class TaskNotifier: Sendable {
    private struct Waiter {
        var taskID: UUID?
        var continuation: AsyncStream<UUID>.Continuation
    }

    private let waiters = Mutex<[UUID: Waiter]>([:])

    /// Tasks that just reached a final status in this process, as recorded, kept only while a
    /// request waits for that very task: it takes the record instead of reading it back. A record
    /// carries the task's files and output, so both their number and their bytes are bounded; a
    /// record over the bounds is simply not kept (the waiter reads the store).
    private let finished = Mutex<(records: [UUID: TaskRecord], order: [UUID], bytes: Int64)>(([:], [], 0))
    static let finishedKept = 64
    static let finishedBytesKept: Int64 = 16 << 20

    public init() {}

    /// Announces that `record` was stored with a final status, then that it changed.
    public func finished(_ record: TaskRecord) {
        let size = record.storedBytes
        let awaited = waiters.withLock { $0.values.contains { $0.taskID == record.id } }
        if awaited && size <= Self.finishedBytesKept {
            finished.withLock { kept in
                if let old = kept.records.updateValue(record, forKey: record.id) {
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
        changed(record.id)
    }

    /// Takes the record `finished(_:)` kept for `taskID`, if it did.
    public func takeFinishedRecord(_ taskID: UUID) -> TaskRecord? {
        finished.withLock { kept in
            guard let record = kept.records.removeValue(forKey: taskID) else { return nil }
            kept.order.removeAll { $0 == taskID }
            kept.bytes -= record.storedBytes
            return record
        }
    }

    /// Announces that `taskID` changed (status, output or deletion).
    public func changed(_ taskID: UUID) {
        let targets = waiters.withLock { $0.values.filter { $0.taskID == nil || $0.taskID == taskID }.map(\.continuation) }
        for continuation in targets { continuation.yield(taskID) }
    }

    /// A stream of change notices for one task (or every task when nil). It ends when the
    /// consuming task is cancelled or the stream is dropped.
    public func changes(of taskID: UUID?) -> AsyncStream<UUID> {
        let key = UUID()
        let (stream, continuation) = AsyncStream<UUID>.makeStream(bufferingPolicy: .bufferingNewest(16))
        waiters.withLock { $0[key] = Waiter(taskID: taskID, continuation: continuation) }
        continuation.onTermination = { [weak self] _ in
            _ = self?.waiters.withLock { $0.removeValue(forKey: key) }
        }
        return stream
    }
}
