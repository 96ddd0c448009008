import EdgyModel
import EdgyStore
import Foundation
import Hummingbird
import NIOCore

/// `GET /v1/tasks/{id}/events` as server-sent events: every stored event after `after`, in order,
/// as `id: <sequence>` / `event: status|stdout|stderr` / `data: …` frames, then new ones as they
/// come. It ends after the terminal status event (or at once when the task is already finished and
/// nothing is left to send, or when the task is deleted). A comment line every 15 s keeps proxies open.
struct EventStream: Sendable {
    let service: TaskService
    let taskID: UUID
    let after: Int64
    var batchSize = 500
    var keepAlive: Duration = .seconds(15)

    func run(_ writer: inout any ResponseBodyWriter) async throws {
        var after = self.after
        var lastWrite = ContinuousClock.now
        try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
        try await service.watch(taskID) { ticks in
            var iterator = ticks.makeAsyncIterator()
            while true {
                let events = try await service.deps.store.events(taskID: taskID, after: after, limit: batchSize)
                var finished = false
                if !events.isEmpty {
                    var frames = ""
                    for event in events {
                        frames += Self.frame(event)
                        after = event.sequence
                        if event.kind == .status, TaskStatus(rawValue: event.data)?.isFinished == true { finished = true }
                    }
                    try await writer.write(ByteBuffer(string: frames))
                    lastWrite = ContinuousClock.now
                }
                if finished { return }
                if events.count == batchSize { continue }
                // Nothing more stored: stop when the task is gone or already finished (a client that
                // reconnects after the terminal event), else wait for a change.
                guard let task = try await service.deps.store.taskSummary(id: taskID), !task.status.isFinished else {
                    if try await service.deps.store.events(taskID: taskID, after: after, limit: 1).isEmpty { return }
                    continue
                }
                guard await iterator.next() != nil else { return }
                if ContinuousClock.now - lastWrite >= keepAlive {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = ContinuousClock.now
                }
            }
        }
        try await writer.finish(nil)
    }

    /// One SSE frame; multi-line data becomes several `data:` lines (the client joins them with `\n`).
    static func frame(_ event: TaskEvent) -> String {
        var out = "id: \(event.sequence)\nevent: \(event.kind.rawValue)\n"
        let normalized = event.data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false) {
            out += "data: \(line)\n"
        }
        return out + "\n"
    }
}
