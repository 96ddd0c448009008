import EdgyStore
import HTTPTypes
import Synchronization

/// A counted, first-come-first-served semaphore with a wait limit. Each permit stands for a share
/// of the daemon's memory: a decode of a request body (multipart parsed, archives inflated, JSON
/// read), a blob upload in progress, or one byte of request bodies held while they arrive. A
/// request that cannot get its permits within the wait limit is refused rather than queued without
/// end.
final class UploadGate: Sendable {
    private struct Waiter {
        var id: UInt64
        var count: Int
        var continuation: CheckedContinuation<Bool, Never>
        /// Gives up at the wait limit; cancelled when the permits come first, so its sleep ends now.
        var timer: Task<Void, Never>?
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0

        /// The waiters at the head of the line whose permits are free now, taken off it. Strictly
        /// in order: a large request is not overtaken for ever by a stream of small ones.
        mutating func grantable() -> [Waiter] {
            var granted: [Waiter] = []
            while let first = waiters.first, first.count <= available {
                available -= first.count
                granted.append(waiters.removeFirst())
            }
            return granted
        }
    }

    private let state: Mutex<State>
    /// All permits: no request may ask for more.
    let capacity: Int

    init(permits: Int) {
        capacity = max(permits, 1)
        state = Mutex(State(available: capacity))
    }

    /// Runs `body` holding a permit.
    /// - Throws: `APIError` 503 with `Retry-After` when no permit frees up within `wait`.
    func run<T>(wait: Duration, retryAfter: Int, _ body: () async throws -> T) async throws -> T {
        guard await acquire(wait: wait) else {
            throw APIError(.serviceUnavailable, code: "busy", "too many uploads are being unpacked; retry shortly", headers: [.retryAfter: String(retryAfter)])
        }
        defer { release() }
        return try await body()
    }

    /// True once `count` permits are held; false when `wait` passes (or the task is cancelled)
    /// first, or at once when `count` is more than the gate's `capacity`.
    func acquire(_ count: Int = 1, wait: Duration) async -> Bool {
        guard count <= capacity else { return false }
        let count = max(count, 0)
        let id: UInt64? = state.withLock { state in
            if state.waiters.isEmpty && state.available >= count {
                state.available -= count
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Permits released since the first look went to nobody: this waiter may take them.
                resume(state.withLock { state in
                    state.waiters.append(Waiter(id: id, count: count, continuation: continuation))
                    return state.grantable()
                })
                let timer = Task {
                    try? await sleepInSlices(for: wait)
                    if !Task.isCancelled { self.giveUp(id) }
                }
                let waiting = state.withLock { state in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
                    state.waiters[index].timer = timer
                    return true
                }
                if !waiting { timer.cancel() }
            }
        } onCancel: {
            giveUp(id)
        }
    }

    /// Returns `count` permits, handing them to the waiters at the head of the line that fit.
    func release(_ count: Int = 1) {
        let granted = state.withLock { state in
            state.available = min(state.available + max(count, 0), capacity)
            return state.grantable()
        }
        resume(granted)
    }

    /// Ends a wait without permits, unless it already got them. The waiter is removed under the
    /// lock, so exactly one of `release` and `giveUp` resumes it. A large waiter that gives up may
    /// unblock smaller ones behind it.
    private func giveUp(_ id: UInt64) {
        let (waiter, granted) = state.withLock { state -> (Waiter?, [Waiter]) in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
            let waiter = state.waiters.remove(at: index)
            return (waiter, state.grantable())
        }
        waiter?.continuation.resume(returning: false)
        resume(granted)
    }

    private func resume(_ granted: [Waiter]) {
        for waiter in granted {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: true)
        }
    }
}

/// One request body's share of the bytes all bodies may hold in memory at once
/// (`APIConfiguration.maxBufferedRequestBytes`), counted in a gate of one permit per byte. Taken
/// before the bytes arrive, given back by `release()` once the body's task is stored or refused,
/// or when the share is dropped.
final class BodyShare: Sendable {
    private let budget: UploadGate
    private let held = Mutex(0)

    init(budget: UploadGate) {
        self.budget = budget
    }

    deinit { release() }

    /// Bytes held now.
    var bytes: Int { held.withLock { $0 } }

    /// Grows the share to `total` bytes; false when the budget has no room within `wait`.
    func grow(to total: Int, wait: Duration) async -> Bool {
        let more = total - bytes
        guard more > 0 else { return true }
        guard await budget.acquire(more, wait: wait) else { return false }
        held.withLock { $0 += more }
        return true
    }

    /// Gives every byte back; later calls do nothing.
    func release() {
        let bytes = held.withLock { held -> Int in
            defer { held = 0 }
            return held
        }
        if bytes > 0 { budget.release(bytes) }
    }
}
