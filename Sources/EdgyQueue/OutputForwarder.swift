import EdgyJail
import EdgyModel
import EdgyStore
import Foundation
import Synchronization

/// Carries a running jail's output, and a multi-step task's step and case events, to the store as
/// events, for SSE readers on any host. The jail thread only appends to a buffer; an async task
/// (started by the first event) writes it out in batches (one event per stream every 50 ms at
/// most), so a chatty workload costs a few writes, not one per line. Events keep their order:
/// output before a step's end stays before it.
final class OutputForwarder: Sendable {
    private struct Pending {
        /// In order; consecutive output of one stream is one entry.
        var entries: [(kind: TaskEvent.Kind, bytes: [UInt8])] = []
        var finished = false

        mutating func append(_ kind: TaskEvent.Kind, _ bytes: some Collection<UInt8>, merging: Bool) {
            if merging, let last = entries.indices.last, entries[last].kind == kind {
                entries[last].bytes.append(contentsOf: bytes)
            } else {
                entries.append((kind, Array(bytes)))
            }
        }
    }

    private final class Buffer: Sendable {
        let state = Mutex(Pending())
    }

    private let pending: Buffer
    private let wake: WakeSignal<Never>
    /// Signalled once, by `finish()`.
    private let finishing: WakeSignal<Never>
    private let store: any TaskStore
    private let notifier: TaskNotifier
    private let taskID: UUID
    private let attempt: Int
    /// Started by the first event: most attempts send none before their end, and a writer that
    /// never writes would still cost two thread hops to end.
    private let writer = Mutex<Task<Void, Never>?>(nil)

    init(store: any TaskStore, notifier: TaskNotifier, taskID: UUID, attempt: Int) {
        self.pending = Buffer()
        self.wake = WakeSignal<Never>()
        self.finishing = WakeSignal<Never>()
        self.store = store
        self.notifier = notifier
        self.taskID = taskID
        self.attempt = attempt
    }

    private func startWriter() {
        writer.withLock { writer in
            if writer == nil { writer = Task { [self] in await write() } }
        }
    }

    private func write() async {
        while true {
            let generation = wake.generation
            let (batch, finished) = pending.state.withLock { state -> ([(kind: TaskEvent.Kind, bytes: [UInt8])], Bool) in
                defer { state.entries.removeAll() }
                return (state.entries, state.finished)
            }
            for (kind, bytes) in batch {
                try? await store.appendOutput(
                    taskID: taskID, attempt: attempt, kind: kind, data: AttemptReport.storableText(bytes), now: Date())
            }
            if !batch.isEmpty { notifier.changed(taskID, .output) }
            if finished { return }
            await wake.wait(since: generation, upTo: .seconds(3600))
            // Let a burst of output gather into one write; the end of the attempt cuts it short.
            let gathering = finishing.generation
            if !pending.state.withLock({ $0.finished }) {
                await finishing.wait(since: gathering, upTo: .milliseconds(50))
            }
        }
    }

    /// Called on the jail's thread with each kept chunk.
    func send(_ kind: OutputStreamKind, _ bytes: ArraySlice<UInt8>) {
        pending.state.withLock { $0.append(kind == .stdout ? .stdout : .stderr, bytes, merging: true) }
        startWriter()
        wake.signal()
    }

    /// A step or case event (`data` is its JSON), after the output sent before it.
    func send(event kind: TaskEvent.Kind, json data: [UInt8]) {
        pending.state.withLock { $0.append(kind, data, merging: false) }
        startWriter()
        wake.signal()
    }

    /// Flushes what is left and waits for the writer.
    func finish() async {
        pending.state.withLock { $0.finished = true }
        wake.signal()
        finishing.signal()
        if let writer = writer.withLock({ $0 }) { await writer.value }
    }
}
