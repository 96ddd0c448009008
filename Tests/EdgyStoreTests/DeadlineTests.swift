import EdgyStore
import Foundation
import Testing

struct DeadlineError: Error {}

@Suite(.timeLimit(.minutes(1)))
struct DeadlineTests {
    @Test func aResultInTimeIsPassedThrough() async throws {
        let value = try await withDeadline(.seconds(5), DeadlineError()) { 42 }
        #expect(value == 42)
        await #expect(throws: CocoaError.self) {
            try await withDeadline(.seconds(5), DeadlineError()) { throw CocoaError(.fileNoSuchFile) }
        }
    }

    @Test func theCallerIsAnsweredAtTheDeadlineEvenWhenTheBodyIgnoresCancellation() async throws {
        let start = ContinuousClock.now
        await #expect(throws: DeadlineError.self) {
            try await withDeadline(.milliseconds(200), DeadlineError()) {
                // Busy for 3 s whatever happens, like a statement on a dead connection.
                let end = ContinuousClock.now + .seconds(3)
                while ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
                return 1
            }
        }
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func cancellingTheCallerCancelsTheBody() async throws {
        let start = ContinuousClock.now
        let caller = Task {
            try await withDeadline(.seconds(30), DeadlineError()) {
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        #expect(ContinuousClock.now - start < .seconds(5))
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SleepInSlicesTests {
    @Test func itSleepsTheWholeDurationAcrossSlices() async throws {
        let start = ContinuousClock.now
        try await sleepInSlices(for: .milliseconds(2300))
        #expect(ContinuousClock.now - start >= .milliseconds(2300))
    }

    @Test func cancellationEndsItAtOnceWithCancellationError() async throws {
        let start = ContinuousClock.now
        let sleeper = Task { try await sleepInSlices(for: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(ContinuousClock.now - start < .seconds(5))
    }
}
