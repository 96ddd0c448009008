import Synchronization

/// Runs `body` and answers within `timeout`: with its result, or with `timeoutError` at the
/// deadline even when `body` does not honour cancellation (a statement in flight on a connection
/// that died without a FIN). `body` is then cancelled and left to end on its own, where a task
/// group would wait for it forever.
public func withDeadline<Result: Sendable>(
    _ timeout: Duration, _ timeoutError: @autoclosure @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let answer = FirstAnswer<Result>()
    let work = Task { try await body() }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            answer.expect(continuation)
            let timer = Task {
                try await sleepInSlices(for: timeout)
                work.cancel()
                answer.give(.failure(timeoutError()))
            }
            Task {
                let result = await work.result
                timer.cancel()
                answer.give(result)
            }
        }
    } onCancel: {
        work.cancel()
    }
}

/// A continuation resumed by whichever of several racers answers first; later answers are dropped.
private final class FirstAnswer<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, any Error>?>(nil)

    func expect(_ waiting: CheckedContinuation<Value, any Error>) {
        continuation.withLock { $0 = waiting }
    }

    func give(_ result: Result<Value, any Error>) {
        continuation.withLock { waiting in
            defer { waiting = nil }
            return waiting
        }?.resume(with: result)
    }
}

/// `Task.sleep(for:)` in slices of at most one second. A cancelled `Task.sleep` on Linux keeps its
/// timer and sleep task allocated until the original deadline, so an hour-long wait that a signal
/// ends after 5 ms holds a few hundred bytes for the hour: a daemon that starts such a wait per
/// task grew by 0.8 KiB per task. With slices, a cancelled sleep holds its memory for a second at
/// most; an idle sleeper wakes once a second, which costs nothing measurable.
public func sleepInSlices(for duration: Duration) async throws {
    let end = ContinuousClock.now + duration
    while true {
        let now = ContinuousClock.now
        guard now < end else { return }
        try await Task.sleep(until: min(end, now + .seconds(1)), clock: .continuous)
    }
}
