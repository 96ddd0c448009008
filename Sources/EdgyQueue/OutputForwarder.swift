import EdgyJail
import EdgyModel
import EdgyStore
import Foundation
import Synchronization

/// Carries a running jail's output to the store as events, for SSE readers on any host. The jail
/// thread only appends to a buffer; an async task writes it out in batches (one event per
/// stream every 50 ms at most), so a chatty workload costs a few writes, not one per line.
final class OutputForwarder: Sendable {
    private struct Pending {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var finished = false
    }

    private final class Buffer: Sendable {
        let state = Mutex(Pending())
    }

    private let pending: Buffer
    private let wake: WakeSignal
    /// Signalled once, by `finish()`.
    private let finishing: WakeSignal
    private let writer: Task<Void, Never>

    init(store: any TaskStore, notifier: TaskNotifier, taskID: UUID, attempt: Int) {
        let pending = Buffer()
        let wake = WakeSignal()
        let finishing = WakeSignal()
        self.pending = pending
        self.wake = wake
        self.finishing = finishing
        writer = Task {
            while true {
                let generation = wake.generation
                let (batch, finished) = pending.state.withLock { state -> (Pending, Bool) in
                    defer { state.stdout.removeAll(); state.stderr.removeAll() }
                    return (state, state.finished)
                }
                for (kind, bytes) in [(TaskEvent.Kind.stdout, batch.stdout), (.stderr, batch.stderr)] where !bytes.isEmpty {
                    try? await store.appendOutput(
                        taskID: taskID, attempt: attempt, kind: kind, data: AttemptReport.storableText(bytes), now: Date())
                }
                if !batch.stdout.isEmpty || !batch.stderr.isEmpty { notifier.changed(taskID, .output) }
                if finished { return }
                await wake.wait(since: generation, upTo: .seconds(3600))
                // Let a burst of output gather into one write; the end of the attempt cuts it short.
                let gathering = finishing.generation
                if !pending.state.withLock({ $0.finished }) {
                    await finishing.wait(since: gathering, upTo: .milliseconds(50))
                }
            }
        }
    }

    /// Called on the jail's thread with each kept chunk.
    func send(_ kind: OutputStreamKind, _ bytes: ArraySlice<UInt8>) {
        pending.state.withLock { state in
            if kind == .stdout { state.stdout.append(contentsOf: bytes) } else { state.stderr.append(contentsOf: bytes) }
        }
        wake.signal()
    }

    /// Flushes what is left and waits for the writer.
    func finish() async {
        pending.state.withLock { $0.finished = true }
        wake.signal()
        finishing.signal()
        await writer.value
    }
}
