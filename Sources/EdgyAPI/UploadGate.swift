import EdgyStore
import HTTPTypes
import Synchronization

/// Bounds how many request bodies are decoded (multipart parsed, archives inflated, JSON read) at
/// once, so the memory one decode may take is multiplied by a known number. A request that cannot
/// get a turn within the wait limit is refused rather than queued without end.
final class UploadGate: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
        /// Gives up at the wait limit; cancelled when a permit comes first, so its sleep ends now.
        var timer: Task<Void, Never>?
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(permits: Int) {
        state = Mutex(State(available: max(permits, 1)))
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

    /// True once a permit is held; false when `wait` passes (or the task is cancelled) first.
    func acquire(wait: Duration) async -> Bool {
        let id: UInt64? = state.withLock { state in
            if state.available > 0 {
                state.available -= 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                state.withLock { $0.waiters.append(Waiter(id: id, continuation: continuation)) }
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

    /// Hands the permit to the longest waiter, or returns it to the pool.
    func release() {
        let next: Waiter? = state.withLock { state in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.timer?.cancel()
        next?.continuation.resume(returning: true)
    }

    /// Ends a wait without a permit, unless it already got one. The waiter is removed under the
    /// lock, so exactly one of `release` and `giveUp` resumes it.
    private func giveUp(_ id: UInt64) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }
}
