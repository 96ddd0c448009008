import Synchronization
import Testing

@testable import EdgyQueue

@Suite struct WakeSignalTests {
    @Test func nothingIsHeldAfterManyWaits() async {
        let signal = WakeSignal()
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

    @Test func signalOneWakesExactlyOneSleeper() async throws {
        let signal = WakeSignal()
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

private final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
