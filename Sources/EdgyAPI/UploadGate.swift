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

/// The bytes all arriving create-task bodies may hold in memory at once
/// (`APIConfiguration.maxBufferedRequestBytes`): a gate of one permit per byte, waited for in
/// order, and each tenant's part of it (`maxBufferedRequestBytesPerTenant`), refused at once when
/// full, so that one tenant's bodies, however slowly they arrive, leave room for the others'.
final class BodyBudget: Sendable {
    let gate: UploadGate
    let perTenant: Int
    private let tenants = Mutex<[String: Int]>([:])

    init(bytes: Int, perTenant: Int) {
        gate = UploadGate(permits: bytes)
        self.perTenant = perTenant
    }

    /// Bytes `tenant`'s bodies hold now.
    func held(by tenant: String) -> Int {
        tenants.withLock { $0[tenant] ?? 0 }
    }

    fileprivate func take(_ bytes: Int, for tenant: String) -> Bool {
        tenants.withLock { tenants in
            let held = tenants[tenant] ?? 0
            guard held + bytes <= perTenant else { return false }
            tenants[tenant] = held + bytes
            return true
        }
    }

    fileprivate func give(_ bytes: Int, for tenant: String) {
        tenants.withLock { tenants in
            let left = (tenants[tenant] ?? 0) - bytes
            tenants[tenant] = left > 0 ? left : nil
        }
    }
}

/// One request body's share of `BodyBudget`: taken before its bytes arrive, given back by
/// `release()` once the body's task is stored or refused, or when the share is dropped.
final class BodyShare: Sendable {
    private let budget: BodyBudget
    private let tenant: String
    private let held = Mutex(0)

    init(budget: BodyBudget, tenant: String) {
        self.budget = budget
        self.tenant = tenant
    }

    deinit { release() }

    /// Bytes held now.
    var bytes: Int { held.withLock { $0 } }

    /// Grows the share to `total` bytes.
    /// - Throws: `APIError` 429 `too_many_bodies` when the tenant's bodies already hold its part;
    ///   503 `busy` when everyone's leave no room within `wait`. Both with `Retry-After`.
    func grow(to total: Int, wait: Duration, retryAfter: Int) async throws(APIError) {
        let more = total - bytes
        guard more > 0 else { return }
        guard budget.take(more, for: tenant) else {
            throw APIError(
                .tooManyRequests, code: "too_many_bodies",
                "this tenant's request bodies arriving now hold \(budget.held(by: tenant)) bytes, and may hold \(budget.perTenant); retry once they are in",
                headers: [.retryAfter: String(retryAfter)])
        }
        guard await budget.gate.acquire(more, wait: wait) else {
            budget.give(more, for: tenant)
            throw APIError(
                .serviceUnavailable, code: "busy", "too many request bodies are arriving at once; retry shortly",
                headers: [.retryAfter: String(retryAfter)])
        }
        held.withLock { $0 += more }
    }

    /// Gives every byte back; later calls do nothing.
    func release() {
        let bytes = held.withLock { held -> Int in
            defer { held = 0 }
            return held
        }
        guard bytes > 0 else { return }
        budget.give(bytes, for: tenant)
        budget.gate.release(bytes)
    }
}
