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

    /// Tasks that just reached a final status in this process, as recorded: a `?wait` request
    /// answers from here instead of reading the task back. Oldest first; a few hundred at most.
    private let finished = Mutex<(records: [UUID: TaskRecord], order: [UUID])>(([:], []))
    static let finishedKept = 256

    public init() {}

    /// Announces that `record` was stored with a final status, then that it changed.
    public func finished(_ record: TaskRecord) {
        finished.withLock { kept in
            if kept.records.updateValue(record, forKey: record.id) == nil { kept.order.append(record.id) }
            while kept.order.count > Self.finishedKept { kept.records[kept.order.removeFirst()] = nil }
        }
        changed(record.id)
    }

    /// The record `finished(_:)` announced for `taskID`, while it is among the most recent.
    public func finishedRecord(_ taskID: UUID) -> TaskRecord? {
        finished.withLock { $0.records[taskID] }
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
