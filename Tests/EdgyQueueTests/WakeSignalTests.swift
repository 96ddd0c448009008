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
}
