import Foundation
import Synchronization

/// Counts failed authentications per client address in a fixed window; once a client has failed
/// `limit` times in the window, it is refused (429 with `Retry-After`) until the window ends,
/// without its token even being looked at (issue 6: rate limiting of failed authentication).
final class AuthFailureLimiter: Sendable {
    private struct Window {
        var start: ContinuousClock.Instant
        var failures: Int
    }

    let limit: Int
    let window: Duration
    private let windows = Mutex<[String: Window]>([:])

    init(limit: Int, window: Duration) {
        self.limit = limit
        self.window = window
    }

    /// Seconds until `client` may try again, or nil when it may try now.
    func retryAfter(_ client: String, now: ContinuousClock.Instant = .now) -> Int? {
        guard limit > 0 else { return nil }
        return windows.withLock { windows -> Int? in
            guard let current = windows[client], now - current.start < window else { return nil }
            guard current.failures >= limit else { return nil }
            let left = window - (now - current.start)
            return max(1, Int(left.components.seconds) + (left.components.attoseconds > 0 ? 1 : 0))
        }
    }

    /// Records a failure; true when this failure reached the limit (the moment worth logging).
    @discardableResult
    func recordFailure(_ client: String, now: ContinuousClock.Instant = .now) -> Bool {
        guard limit > 0 else { return false }
        return windows.withLock { windows -> Bool in
            // Forget finished windows now and then, so that a scan of many addresses cannot grow the table forever.
            if windows.count > 10_000 { windows = windows.filter { now - $0.value.start < window } }
            var current = windows[client].flatMap { now - $0.start < window ? $0 : nil } ?? Window(start: now, failures: 0)
            current.failures += 1
            windows[client] = current
            return current.failures == limit
        }
    }
}
