@testable import EdgyJail
import Foundation
import Glibc
import Synchronization
import Testing

/// Attempts run on kept threads: a finished body's thread takes the next body, at most
/// `maxIdle` wait, and none runs two bodies at once.
struct SupervisionThreadsTests {
    /// Runs `body` on `threads` and waits (up to 5 s) for its result.
    private func run<T: Sendable>(_ threads: SupervisionThreads, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            threads.run { continuation.resume(returning: body()) }
        }
    }

    private func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }

    @Test func aFinishedThreadTakesTheNextBody() async {
        let threads = SupervisionThreads(maxIdle: 4)
        // A mark left in the first body's thread-specific data is there for the second body.
        var key = pthread_key_t()
        #expect(pthread_key_create(&key, nil) == 0)
        defer { pthread_key_delete(key) }
        let marked = key
        let firstSawNoMark = await run(threads) {
            defer { pthread_setspecific(marked, UnsafeRawPointer(bitPattern: 1)) }
            return pthread_getspecific(marked) == nil
        }
        #expect(firstSawNoMark)
        #expect(eventually { threads.idleCount == 1 })
        #expect(await run(threads) { pthread_getspecific(marked) != nil })
        #expect(pthread_getspecific(marked) == nil)
    }

    @Test func atMostMaxIdleThreadsWait() async {
        let threads = SupervisionThreads(maxIdle: 2)
        let gate = Gate()
        // Five bodies at once need five threads; each waits until all have started.
        let ids = await withTaskGroup(of: UInt.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    await run(threads) {
                        gate.started.add(1, ordering: .sequentiallyConsistent)
                        let deadline = Date().addingTimeInterval(5)
                        while !gate.release.load(ordering: .sequentiallyConsistent) && Date() < deadline { usleep(500) }
                        return UInt(pthread_self())
                    }
                }
            }
            #expect(eventually { gate.started.load(ordering: .sequentiallyConsistent) == 5 })
            gate.release.store(true, ordering: .sequentiallyConsistent)
            var ids: [UInt] = []
            for await id in group { ids.append(id) }
            return ids
        }
        #expect(Set(ids).count == 5)
        #expect(eventually { threads.idleCount == 2 })
        // The three others ended: only kept threads remain to run more.
        let next = await run(threads) { UInt(pthread_self()) }
        #expect(Set(ids).contains(next))
    }

    /// What a body captured (an attempt's supervisor, with its pool and sockets) is let go when
    /// the body ends, not kept by the parked thread.
    @Test func aParkedThreadKeepsNothingOfItsBody() async {
        let threads = SupervisionThreads(maxIdle: 4)
        let gate = Gate()
        do {
            let canary = Canary(gate)
            await run(threads) { _ = canary.gate }
        }
        #expect(eventually { threads.idleCount == 1 })
        #expect(eventually { gate.release.load(ordering: .sequentiallyConsistent) })
    }

    @Test func backgroundBodiesReturnTheirResults() async {
        let results = await withTaskGroup(of: Int.self) { group in
            for value in 0..<20 { group.addTask { await onBackgroundThread { value * 2 } } }
            var all: [Int] = []
            for await result in group { all.append(result) }
            return all.sorted()
        }
        #expect(results == (0..<20).map { $0 * 2 })
    }
}

private final class Gate: Sendable {
    let started = Atomic<Int>(0)
    let release = Atomic<Bool>(false)
}

/// Says when it is gone.
private final class Canary: Sendable {
    let gate: Gate
    init(_ gate: Gate) { self.gate = gate }
    deinit { gate.release.store(true, ordering: .sequentiallyConsistent) }
}
