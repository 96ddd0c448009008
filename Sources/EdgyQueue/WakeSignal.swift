import EdgyStore
import Synchronization

/// A wake-up for sleepers that also time out: `signal()` wakes every waiter, and a waiter that
/// saw an older generation than the current one does not sleep at all (no lost wake-ups between
/// checking for work and going to sleep).
final class WakeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Ids whose timeout fired before they registered.
        var released: Set<UInt64> = []
    }

    private let state = Mutex(State())

    var generation: UInt64 { state.withLock { $0.generation } }

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    /// Wakes one waiter, if any sleeps; either way, a waiter that read the generation before this
    /// call does not go to sleep on it.
    func signalOne() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.generation &+= 1
            guard let key = state.waiters.keys.first else { return nil }
            return state.waiters.removeValue(forKey: key)
        }
        waiter?.resume()
    }

    /// Returns after a `signal()` (or at once if one came after `generation` was read), or after `timeout`.
    func wait(since generation: UInt64, upTo timeout: Duration) async {
        let id: UInt64? = state.withLock { state in
            guard state.generation == generation else { return nil }
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.released.remove(id) != nil || state.generation != generation { return true }
                        state.waiters[id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask {
                try? await sleepInSlices(for: timeout)
                self.release(id)
            }
            await group.next()
            group.cancelAll()
        }
        // Both children are done: the timer, cancelled after a signal, may have marked `id` released
        // although the wait was already over. Forget it, or the set grows for the signal's life.
        state.withLock { state in
            state.released.remove(id)
            state.waiters.removeValue(forKey: id)
        }
    }

    /// Waiters and released ids held now (0 when nobody waits); for tests of the signal's memory.
    var heldCount: Int { state.withLock { $0.waiters.count + $0.released.count } }

    private func release(_ id: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let continuation = state.waiters.removeValue(forKey: id) { return continuation }
            state.released.insert(id)
            return nil
        }
        continuation?.resume()
    }
}
