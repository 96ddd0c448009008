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

    public init() {}

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
