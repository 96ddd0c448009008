import EdgyStore
import Synchronization

/// A wake-up for sleepers that also time out: `signal()` wakes every waiter, `signalOne()` one,
/// and a waiter that saw an older generation than the current one does not sleep at all (no lost
/// wake-ups between checking for work and going to sleep).
///
/// A waiter can also be handed a value: `reserve()` takes one sleeping waiter, and the
/// reservation's `hand` wakes it with the value. The worker pool hands an idle worker a task
/// already claimed for it, so a task created while a worker is idle starts without a wake-up and a
/// second claim. Signals that hand nothing use `WakeSignal<Never>`.
final class WakeSignal<Handed: Sendable>: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiting: [UInt64: CheckedContinuation<Handed?, Never>] = [:]
        /// Waiters taken by a reservation: only its `hand` resumes them, whatever their timer says.
        var reserved: Set<UInt64> = []
        /// Ids whose timeout fired before they waited.
        var released: Set<UInt64> = []
        /// Set at shutdown: no more reservations.
        var closed = false
    }

    private let state = Mutex(State())

    var generation: UInt64 { state.withLock { $0.generation } }

    /// Waiters asleep now, not counting reserved ones.
    var sleeping: Int { state.withLock { $0.waiting.count } }

    /// Wakes every waiter that is not reserved; with `close`, refuses reservations from now on.
    func signal(close: Bool = false) {
        let waiters = state.withLock { state -> [CheckedContinuation<Handed?, Never>] in
            state.generation &+= 1
            if close { state.closed = true }
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        waiters.forEach { $0.resume(returning: nil) }
    }

    /// Wakes one waiter, if any sleeps; either way a waiter that read the generation before this
    /// call does not go to sleep on it.
    func signalOne() {
        let waiter = state.withLock { state -> CheckedContinuation<Handed?, Never>? in
            state.generation &+= 1
            guard let key = state.waiting.keys.first else { return nil }
            return state.waiting.removeValue(forKey: key)
        }
        waiter?.resume(returning: nil)
    }

    /// Takes one sleeping waiter, to be handed a value; nil when none sleeps.
    func reserve() -> Reservation? {
        let taken = state.withLock { state -> (UInt64, CheckedContinuation<Handed?, Never>)? in
            guard !state.closed, let key = state.waiting.keys.first, let waiter = state.waiting.removeValue(forKey: key) else { return nil }
            state.reserved.insert(key)
            return (key, waiter)
        }
        return taken.map { Reservation(id: $0.0, waiter: $0.1, owner: self) }
    }

    /// Sleeps until woken (nil), handed a value, or `timeout` passes (nil). Returns at once when a
    /// signal came after `generation` was read.
    @discardableResult
    func wait(since generation: UInt64, upTo timeout: Duration) async -> Handed? {
        let id: UInt64? = state.withLock { state in
            guard state.generation == generation else { return nil }
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { return nil }
        // One continuation, ended by a signal, a hand-off, the timer or cancellation (the last two
        // release it). No child tasks: ending a task group wakes its sleeping timer child and waits
        // for it, two thread hops on every wake-up of a worker. No timer source of its own either:
        // arming and cancelling one woke libdispatch's threads on every wait (`WakeTimers`).
        let timer = WakeTimers.shared.schedule(after: timeout) { [self] in release(id) }
        let handed = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Handed?, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.released.remove(id) != nil || state.generation != generation { return true }
                    state.waiting[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume(returning: nil) }
            }
        } onCancel: {
            release(id)
        }
        // A firing already under way finishes first, and none comes after, so the timer cannot
        // release an id this wait no longer holds.
        WakeTimers.shared.cancel(timer)
        state.withLock { state in
            state.released.remove(id)
            state.waiting.removeValue(forKey: id)
        }
        return handed
    }

    /// Waiters, released ids and reservations held now (0 when nobody waits); for tests of its memory.
    var heldCount: Int { state.withLock { $0.waiting.count + $0.released.count + $0.reserved.count } }

    private func release(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Handed?, Never>? in
            if let waiter = state.waiting.removeValue(forKey: id) { return waiter }
            if !state.reserved.contains(id) { state.released.insert(id) }
            return nil
        }
        waiter?.resume(returning: nil)
    }

    fileprivate func finishReservation(_ id: UInt64) {
        _ = state.withLock { $0.reserved.remove(id) }
    }

    /// One reserved waiter. `hand` wakes it exactly once, with a value or with nil (as a signal
    /// would); a reservation dropped without a hand-off hands nil.
    final class Reservation: Sendable {
        private let id: UInt64
        private let waiter: Mutex<CheckedContinuation<Handed?, Never>?>
        private let owner: WakeSignal

        fileprivate init(id: UInt64, waiter: CheckedContinuation<Handed?, Never>, owner: WakeSignal) {
            self.id = id
            self.waiter = Mutex(waiter)
            self.owner = owner
        }

        func hand(_ value: Handed?) {
            guard let waiter = waiter.withLock({ slot in defer { slot = nil }; return slot }) else { return }
            owner.finishReservation(id)
            waiter.resume(returning: value)
        }

        deinit { hand(nil) }
    }
}
