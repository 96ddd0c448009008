import EdgyJail
import EdgyModel

/// What the worker pool needs from the jail side: run one attempt to its end and report it.
///
/// A conformer never throws; every ending is a report. Cancelling the calling task ends the
/// attempt at once and the report says `cancelled` (the pool cancels on a cancel request, a lost
/// lease and the end of the shutdown grace period). `onOutput` receives each kept chunk of
/// stdout/stderr as it arrives, on any thread; it must return quickly.
public protocol JailRunner: Sendable {
    func run(
        _ request: JailRequest, onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    ) async -> AttemptReport
}

/// Production: real jails, spawned (or taken from its pool of parked jails) by the supervisor.
extension JailSupervisor: JailRunner {}
