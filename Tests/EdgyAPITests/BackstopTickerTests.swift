import Foundation
import Testing

@testable import EdgyAPI

@Suite struct BackstopTickerTests {
    @Test func everyRegisteredStreamTicksUntilRemovedAndTheTaskEndsWithTheLast() async throws {
        let ticker = BackstopTicker(interval: .milliseconds(10))
        let (first, firstTick) = AsyncStream<UUID>.makeStream()
        let (second, secondTick) = AsyncStream<UUID>.makeStream()
        let a = UUID(), b = UUID()
        let firstKey = ticker.add(a, firstTick)
        let secondKey = ticker.add(b, secondTick)
        #expect(ticker.isTicking)
        var firstTicks = first.makeAsyncIterator()
        var secondTicks = second.makeAsyncIterator()
        for _ in 0..<3 {
            #expect(await firstTicks.next() == a)
            #expect(await secondTicks.next() == b)
        }
        ticker.remove(firstKey)
        #expect(ticker.registered == 1)
        #expect(await secondTicks.next() == b)
        ticker.remove(secondKey)
        #expect(ticker.registered == 0)
        let deadline = ContinuousClock.now + .seconds(5)
        while ticker.isTicking && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(!ticker.isTicking)
        // A new stream starts it again.
        let (third, thirdTick) = AsyncStream<UUID>.makeStream()
        let thirdKey = ticker.add(a, thirdTick)
        var thirdTicks = third.makeAsyncIterator()
        #expect(await thirdTicks.next() == a)
        ticker.remove(thirdKey)
    }
}
