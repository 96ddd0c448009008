import Foundation
import Synchronization

/// Ticks every registered stream at a fixed interval, from one task shared by all of them: the
/// backstop of `?wait` and event streams, so that a wake-up the notifier missed (another host's
/// change without a notice) costs latency, never correctness.
///
/// One shared task instead of one per waiter: a waiter of its own needed a task group, and ending
/// a group means waking its sleeping child and waiting for it, two thread hops on every answer.
/// The task runs only while a stream is registered.
final class BackstopTicker: Sendable {
    private struct State {
        var next: UInt64 = 0
        var streams: [UInt64: (id: UUID, continuation: AsyncStream<UUID>.Continuation)] = [:]
        var running = false
    }

    let interval: Duration
    private let state = Mutex(State())

    init(interval: Duration) {
        self.interval = interval
    }

    /// Ticks `continuation` with `id` until `remove` is called with the key returned.
    func add(_ id: UUID, _ continuation: AsyncStream<UUID>.Continuation) -> UInt64 {
        let (key, start) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            state.streams[state.next] = (id, continuation)
            defer { state.running = true }
            return (state.next, !state.running)
        }
        if start { Task.detached { [self] in await tick() } }
        return key
    }

    /// Streams registered now, and whether the ticking task runs; for tests.
    var registered: Int { state.withLock { $0.streams.count } }
    var isTicking: Bool { state.withLock { $0.running } }

    func remove(_ key: UInt64) {
        _ = state.withLock { $0.streams.removeValue(forKey: key) }
    }

    private func tick() async {
        while true {
            try? await Task.sleep(for: interval)
            let targets = state.withLock { state -> [(id: UUID, continuation: AsyncStream<UUID>.Continuation)]? in
                if state.streams.isEmpty {
                    state.running = false
                    return nil
                }
                return Array(state.streams.values)
            }
            guard let targets else { return }
            for target in targets { target.continuation.yield(target.id) }
        }
    }
}
