@testable import EdgyAPI
import Foundation
import Glibc
import Testing

/// Work on a client's bytes leaves the event loop when the bytes are many: edgyd's Swift tasks
/// share a few loops, and a large body decoded there would hold every other request.
@Suite("Blocking work")
struct BlockingWorkTests {
    /// The thread the body ran on and its name, and the caller's thread just before.
    static func threads(bytes: Int) async throws -> (caller: pthread_t, body: pthread_t, bodyName: String) {
        let caller = pthread_self()
        let (body, name) = try await BlockingWork.run(bytes: bytes) {
            (pthread_self(), (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "")
        }
        return (caller, body, name)
    }

    @Test func smallInputsRunWhereTheRequestRuns() async throws {
        let ran = try await Self.threads(bytes: BlockingWork.inlineBytes)
        #expect(pthread_equal(ran.caller, ran.body) != 0)
    }

    @Test func largeInputsRunOnTheBlockingPool() async throws {
        let ran = try await Self.threads(bytes: BlockingWork.inlineBytes + 1)
        #expect(pthread_equal(ran.caller, ran.body) == 0)
        #expect(ran.bodyName.contains("TP-#"), "the body ran on \(ran.bodyName)")
    }

    @Test func errorsComeBackFromEitherPath() async throws {
        struct Refused: Error {}
        for bytes in [1, BlockingWork.inlineBytes + 1] {
            await #expect(throws: Refused.self) { try await BlockingWork.run(bytes: bytes) { () throws -> Int in throw Refused() } }
        }
    }
}
