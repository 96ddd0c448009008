import EdgyModel
import EdgyStore
import Foundation
import Testing

/// The finished records a notifier keeps for `?wait`: only for a task someone waits on, taken once,
/// and never one that would hold more than the byte bound in memory.
struct TaskNotifierTests {
    static func record(bytes: Int) -> TaskRecord {
        TaskRecord(tenant: "t", spec: TaskSpec(name: "n", policy: "p", files: [TaskFile(path: "f", contents: Array(repeating: 7, count: bytes))]))
    }

    @Test func aFinishedRecordIsKeptOnlyForAWaiterAndTakenOnce() {
        let notifier = TaskNotifier()
        let unwatched = Self.record(bytes: 10)
        notifier.finished(unwatched)
        #expect(notifier.takeFinished(unwatched.id)?.record == nil)

        let watched = Self.record(bytes: 10)
        let stream = notifier.changes(of: watched.id)
        notifier.finished(watched)
        #expect(notifier.takeFinished(watched.id)?.record == watched)
        #expect(notifier.takeFinished(watched.id)?.record == nil)
        // The report's bytes, when the worker gives them, come with the record.
        notifier.finished(watched, lastReportJSON: Array("{}".utf8))
        #expect(notifier.takeFinished(watched.id)?.lastReportJSON == Array("{}".utf8))
        _ = stream
    }

    @Test func listenersHearOnlyTheKindsTheyAskForAndEveryUnknownChange() async {
        let notifier = TaskNotifier()
        let kinds: [TaskNotifier.Change] = [.queued, .running, .output, .cancelRequested, .ended, .unknown]
        let ids = kinds.map { _ in UUID() }
        let marker = UUID()
        let endings = notifier.changes(of: nil, only: [.ended])
        let everything = notifier.changes(of: nil)
        let one = notifier.changes(of: ids[1])
        for (id, kind) in zip(ids, kinds) { notifier.changed(id, kind) }
        notifier.changed(marker, .ended)
        func heard(_ stream: AsyncStream<UUID>, until last: UUID) async -> [UUID] {
            var heard: [UUID] = []
            for await id in stream {
                heard.append(id)
                if id == last { break }
            }
            return heard
        }
        #expect(await heard(endings, until: marker) == [ids[4], ids[5], marker])
        #expect(await heard(everything, until: marker) == ids + [marker])
        notifier.changed(ids[1], .ended)
        #expect(await heard(one, until: ids[1]) == [ids[1]])
    }

    @Test func recordsBeyondTheByteBoundAreNotKept() {
        let notifier = TaskNotifier()
        let big = Self.record(bytes: 17 << 20)
        let streams = [notifier.changes(of: big.id)]
        notifier.finished(big)
        #expect(notifier.takeFinished(big.id)?.record == nil)
        // Many mid-sized ones: the oldest go first, and the total stays under 16 MiB.
        let mid = (0..<8).map { _ in Self.record(bytes: 3 << 20) }
        let more = mid.map { notifier.changes(of: $0.id) }
        for record in mid { notifier.finished(record) }
        let kept = mid.filter { notifier.takeFinished($0.id) != nil }
        #expect(kept.count == 5, "\(kept.count) of 8 records of 3 MiB kept")
        #expect(kept.map(\.id) == mid.suffix(5).map(\.id))
        _ = (streams, more)
    }
}
