import Foundation
import Synchronization
import Testing

@testable import EdgyQueue

@Suite(.timeLimit(.minutes(1))) struct WakeSignalTests {
    @Test func nothingIsHeldAfterManyWaits() async {
        let signal = WakeSignal<Never>()
        // Waits that time out.
        for _ in 0..<200 { await signal.wait(since: signal.generation, upTo: .milliseconds(1)) }
        #expect(signal.heldCount == 0)
        // Waits ended by a signal, whose timers are then cancelled.
        for _ in 0..<200 {
            let generation = signal.generation
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await signal.wait(since: generation, upTo: .seconds(30)) }
                group.addTask {
                    try? await Task.sleep(for: .microseconds(200))
                    signal.signal()
                }
            }
        }
        #expect(signal.heldCount == 0)
        // Waits that saw an older generation return at once.
        await signal.wait(since: signal.generation &- 1, upTo: .seconds(30))
        #expect(signal.heldCount == 0)
    }

    /// A wait cut short by a signal leaves nothing of its hour-long timer behind: 40,000 of them
    /// grow the process by less than 2 MiB, about 50 bytes each.
    @Test func waitsCutShortFreeTheirTimers() async throws {
        let signal = WakeSignal<Never>()
        func cutShort(_ count: Int) async {
            for _ in 0..<count {
                let generation = signal.generation
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await signal.wait(since: generation, upTo: .seconds(3600)) }
                    group.addTask { signal.signal() }
                }
            }
        }
        await cutShort(2_000)  // the allocator's arenas grow to their working size
        let before = try residentKiB()
        await cutShort(40_000)
        let grown = try residentKiB() - before
        #expect(grown < 2_048, "RSS grew by \(grown) KiB over 40,000 waits")
        #expect(signal.heldCount == 0)
    }

    @Test func signalOneWakesExactlyOneSleeper() async throws {
        let signal = WakeSignal<Never>()
        let woken = Counter()
        let generation = signal.generation
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    await signal.wait(since: generation, upTo: .seconds(30))
                    woken.add()
                }
            }
            // Both asleep, then one notice: one wakes, the other sleeps on.
            let deadline = ContinuousClock.now + .seconds(10)
            while signal.heldCount < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            #expect(signal.heldCount == 2)
            signal.signalOne()
            while woken.value < 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            try await Task.sleep(for: .milliseconds(50))
            #expect(woken.value == 1)
            #expect(signal.heldCount == 1)
            signal.signalOne()
            try await group.waitForAll()
        }
        #expect(woken.value == 2)
        // A waiter that read the generation before a signalOne does not sleep on it.
        let before = signal.generation
        signal.signalOne()
        let started = ContinuousClock.now
        await signal.wait(since: before, upTo: .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}

/// Reservations: a sleeper taken by `reserve` wakes only with what is handed to it, however long
/// that takes; others are not disturbed; nothing is held afterwards.
@Suite(.timeLimit(.minutes(1))) struct WakeSignalHandOffTests {
    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
    }

    @Test func aReservedSleeperWakesWithWhatIsHandedEvenAfterItsTimeout() async throws {
        let signal = WakeSignal<Int>()
        #expect(signal.reserve() == nil)
        try await withThrowingTaskGroup(of: Int?.self) { group in
            let generation = signal.generation
            group.addTask { await signal.wait(since: generation, upTo: .milliseconds(20)) }
            try await Self.waitUntil { signal.heldCount == 1 }
            let reservation = try #require(signal.reserve())
            // Its timer passes; it does not wake. Signals do not wake it either.
            try await Task.sleep(for: .milliseconds(100))
            signal.signal()
            signal.signalOne()
            #expect(signal.heldCount == 1)
            reservation.hand(7)
            reservation.hand(8)  // a second hand-off does nothing
            #expect(try await group.next() == .some(7))
        }
        #expect(signal.heldCount == 0)
    }

    @Test func aDroppedReservationWakesItsSleeperWithNothing() async throws {
        let signal = WakeSignal<Int>()
        try await withThrowingTaskGroup(of: Int?.self) { group in
            let generation = signal.generation
            group.addTask { await signal.wait(since: generation, upTo: .seconds(30)) }
            try await Self.waitUntil { signal.heldCount == 1 }
            do { _ = try #require(signal.reserve()) }
            #expect(try await group.next() == .some(nil))
        }
        #expect(signal.heldCount == 0)
    }

    @Test func closingRefusesReservationsAndWakesTheRest() async throws {
        let signal = WakeSignal<Int>()
        try await withThrowingTaskGroup(of: Int?.self) { group in
            let generation = signal.generation
            for _ in 0..<2 { group.addTask { await signal.wait(since: generation, upTo: .seconds(30)) } }
            try await Self.waitUntil { signal.heldCount == 2 }
            let reservation = try #require(signal.reserve())
            signal.signal(close: true)
            #expect(try await group.next() == .some(nil))  // the one not reserved
            #expect(signal.reserve() == nil)
            reservation.hand(3)
            #expect(try await group.next() == .some(3))
        }
        #expect(signal.heldCount == 0)
    }
}

private final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// The one thread behind every `WakeSignal` timeout.
@Suite(.timeLimit(.minutes(1))) struct WakeTimersTests {
    private static func elapsed(since start: ContinuousClock.Instant) -> Duration { ContinuousClock.now - start }

    @Test func aTimeoutFiresAfterItsDurationAndNotBefore() async {
        let signal = WakeSignal<Never>()
        for timeout in [Duration.milliseconds(1), .milliseconds(20), .milliseconds(60)] {
            let start = ContinuousClock.now
            await signal.wait(since: signal.generation, upTo: timeout)
            let took = Self.elapsed(since: start)
            #expect(took >= timeout, "a \(timeout) wait returned after \(took)")
            #expect(took < timeout + .seconds(2), "a \(timeout) wait returned after \(took)")
        }
    }

    /// The thread sleeps until the earliest deadline it knows: a nearer one must wake it.
    @Test func aNearerDeadlineWakesTheThreadThatSleepsUntilAFartherOne() async {
        let far = WakeTimers.shared.schedule(after: .seconds(30)) {}
        defer { WakeTimers.shared.cancel(far) }
        let fired = Mutex<ContinuousClock.Instant?>(nil)
        let start = ContinuousClock.now
        let near = WakeTimers.shared.schedule(after: .milliseconds(20)) { fired.withLock { $0 = ContinuousClock.now } }
        let deadline = start + .seconds(5)
        while fired.withLock({ $0 }) == nil && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        WakeTimers.shared.cancel(near)
        let at = fired.withLock { $0 }
        #expect(at != nil, "the 20 ms timer did not fire within 5 s")
        if let at { #expect(at - start >= .milliseconds(20) && at - start < .seconds(2), "fired after \(at - start)") }
    }

    @Test func aCancelledTimerNeverFiresAndIsForgotten() async throws {
        let fired = Atomic<Int>(0)
        let before = WakeTimers.shared.pendingCount
        let keys = (0..<1_000).map { _ in WakeTimers.shared.schedule(after: .milliseconds(30)) { fired.add(1, ordering: .relaxed) } }
        #expect(WakeTimers.shared.pendingCount >= before + 1_000)
        for key in keys { WakeTimers.shared.cancel(key) }
        #expect(WakeTimers.shared.pendingCount <= before)
        try await Task.sleep(for: .milliseconds(100))
        #expect(fired.load(ordering: .relaxed) == 0)
    }

    @Test func durationsBecomeNanosecondsWithinAYear() {
        #expect(WakeTimers.nanoseconds(.milliseconds(-5)) == 0)
        #expect(WakeTimers.nanoseconds(.milliseconds(1_500)) == 1_500_000_000)
        #expect(WakeTimers.nanoseconds(.nanoseconds(7)) == 7)
        #expect(WakeTimers.nanoseconds(.seconds(Int64.max)) == 365 * 86_400 * 1_000_000_000)
    }
}

/// This process's resident set, from /proc.
func residentKiB() throws -> Int {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    else { throw CocoaError(.fileReadCorruptFile) }
    return kib
}
