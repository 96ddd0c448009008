import EdgySystem
import Glibc
import Synchronization

/// One thread that fires every `WakeSignal` timeout of the process. A libdispatch timer source per
/// wait cost two or three wake-ups of libdispatch's threads (arming it, cancelling it) on every
/// heartbeat and every idle worker's poll, most of them on a task's path. Here scheduling and
/// cancelling take a lock, and the thread is woken only when a new deadline comes before the one
/// it sleeps until; a cancelled deadline it sleeps until costs one spurious wake-up at most.
final class WakeTimers: Sendable {
    static let shared = WakeTimers()

    private struct Entry {
        var deadline: UInt64
        var key: UInt64
        var fire: @Sendable () -> Void
    }

    private struct State {
        var entries: [Entry] = []
        var nextKey: UInt64 = 0
        /// The deadline the thread sleeps until (`.max`: none, or the thread is not started).
        var sleepingUntil: UInt64 = .max
        var started = false
    }

    private let state = Mutex<State>(State())
    /// Wakes the thread to look at the deadlines again.
    private let wakeFD: Int32

    private init() {
        do {
            wakeFD = try makeEventFD()
        } catch {
            preconditionFailure("eventfd for the wake timers: \(error)")
        }
    }

    /// Calls `fire` once `timeout` has passed, on the timers' thread, unless `cancel(_:)` comes
    /// first. `fire` runs under the timers' lock: keep it short, and never schedule or cancel in it.
    func schedule(after timeout: Duration, _ fire: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = Self.now() + Self.nanoseconds(timeout)
        let (key, wake, start) = state.withLock { state -> (UInt64, Bool, Bool) in
            state.nextKey &+= 1
            state.entries.append(Entry(deadline: deadline, key: state.nextKey, fire: fire))
            let start = !state.started
            state.started = true
            let wake = deadline < state.sleepingUntil
            if wake { state.sleepingUntil = deadline }
            return (state.nextKey, wake && !start, start)
        }
        if start { startThread() }
        if wake { signalEventFD(wakeFD) }
        return key
    }

    /// After this returns, the timer's `fire` has run or never will.
    func cancel(_ key: UInt64) {
        state.withLock { state in
            guard let index = state.entries.firstIndex(where: { $0.key == key }) else { return }
            state.entries.swapAt(index, state.entries.count - 1)
            state.entries.removeLast()
        }
    }

    /// Timers scheduled and neither fired nor cancelled (for tests).
    var pendingCount: Int { state.withLock { $0.entries.count } }

    /// `duration` in nanoseconds: at least zero, at most a year.
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        guard seconds < 365 * 86_400 else { return 365 * 86_400 * 1_000_000_000 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    private static func now() -> UInt64 { monotonicNanos() }

    private func startThread() {
        let box = Unmanaged.passRetained(self)
        var thread: pthread_t = 0
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<WakeTimers>.fromOpaque(raw!).takeRetainedValue().loop()
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create for the wake timers: \(rc)")
        pthread_detach(thread)
    }

    private func loop() -> Never {
        while true {
            // Fire what is due, under the lock, so that a cancel that returns has seen it fire.
            let next = state.withLock { state -> UInt64 in
                let now = Self.now()
                var index = 0
                while index < state.entries.count {
                    if state.entries[index].deadline <= now {
                        state.entries[index].fire()
                        state.entries.swapAt(index, state.entries.count - 1)
                        state.entries.removeLast()
                    } else {
                        index += 1
                    }
                }
                state.sleepingUntil = state.entries.lazy.map(\.deadline).min() ?? .max
                return state.sleepingUntil
            }
            var pfd = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
            let now = Self.now()
            if next == .max {
                _ = poll(&pfd, 1, -1)
            } else if next > now {
                // Whole milliseconds, rounded up: a timeout never fires early.
                _ = poll(&pfd, 1, Int32(min((next - now + 999_999) / 1_000_000, UInt64(Int32.max))))
            }
            var drained: UInt64 = 0
            _ = read(wakeFD, &drained, 8)
        }
    }
}
