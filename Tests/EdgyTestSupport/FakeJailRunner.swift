import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyQueue
import Foundation
import Glibc
import Synchronization

/// A `JailRunner` without jails: every attempt plays a scripted behaviour, so the worker pool's
/// retry, lease, cancel and shutdown logic runs as a normal user, quickly and deterministically.
/// It keeps a log of its attempts (when each started and how it ended) for tests to check.
public final class FakeJailRunner: JailRunner {
    /// What one attempt does.
    public indirect enum Behaviour: Sendable {
        /// The workload writes `stdout` and exits with `code`.
        case exit(Int32, stdout: String = "")
        /// The workload dies of `signal` (SIGSEGV: a crash).
        case crash(signal: Int32 = SIGSEGV)
        /// The attempt ends with this outcome and no more detail (setup_error, wall_timeout, lost...).
        case outcome(Outcome)
        /// Runs until cancelled, like a workload that never ends (ten minutes at most).
        case hang
        /// Waits `duration` (cancellation cuts it short), then does `then`.
        case slow(Duration, then: Behaviour)
    }

    /// How an attempt ended.
    public enum Ending: Sendable, Equatable {
        /// By itself, with this outcome.
        case finished(Outcome)
        /// Cancelled by its caller (the pool killed the jail).
        case cancelled
    }

    /// One call of `run`.
    public struct Attempt: Sendable {
        public var request: JailRequest
        public var startedAt: ContinuousClock.Instant
        /// Nil while it runs.
        public var ending: Ending?
    }

    private let choose: @Sendable (JailRequest, Int) -> Behaviour
    private let log = Mutex<[Attempt]>([])

    /// `choose` gets the request and its attempt number: 1 + the earlier calls with the same
    /// files, command and stdin (so tasks with different contents count separately).
    public init(_ choose: @escaping @Sendable (_ request: JailRequest, _ attempt: Int) -> Behaviour) {
        self.choose = choose
    }

    /// Plays `script` in order, for any request; past its end, the last behaviour repeats.
    public convenience init(script: [Behaviour]) {
        self.init { _, attempt in script.isEmpty ? .exit(0) : script[min(attempt, script.count) - 1] }
    }

    /// Every attempt so far, in the order they started.
    public var attempts: [Attempt] { log.withLock { $0 } }

    /// Attempts started and not yet ended.
    public var running: Int { log.withLock { $0.filter { $0.ending == nil }.count } }

    /// Polls until `condition` holds on the log or `timeout` passes; returns whether it held.
    public func wait(
        upTo timeout: Duration = .seconds(10), until condition: ([Attempt]) -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(attempts) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition(attempts)
    }

    public func run(
        _ request: JailRequest, onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    ) async -> AttemptReport {
        let started = Date()
        let (index, attempt) = log.withLock { log in
            let same = log.filter {
                $0.request.files == request.files && $0.request.command == request.command && $0.request.stdin == request.stdin
            }
            log.append(Attempt(request: request, startedAt: .now, ending: nil))
            return (log.count - 1, same.count + 1)
        }
        var report = await play(choose(request, attempt), onOutput: onOutput)
        report.policyName = request.policy.name
        report.policyDigest = request.policyDigest
        report.startedAt = started.timeIntervalSince1970
        report.finishedAt = Date().timeIntervalSince1970
        report.wallMs = Int((report.finishedAt - report.startedAt) * 1000)
        let ending: Ending = report.outcome == .cancelled ? .cancelled : .finished(report.outcome)
        log.withLock { $0[index].ending = ending }
        return report
    }

    private func play(
        _ behaviour: Behaviour, onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    ) async -> AttemptReport {
        if Task.isCancelled { return AttemptReport(outcome: .cancelled) }
        switch behaviour {
        case .exit(let code, let stdout):
            let bytes = Array(stdout.utf8)
            if !bytes.isEmpty { onOutput?(.stdout, bytes[...]) }
            return AttemptReport(outcome: .exited, exitCode: code, stdout: bytes)
        case .crash(let signal):
            return AttemptReport(outcome: .signaled, signal: signal)
        case .outcome(let outcome):
            return AttemptReport(outcome: outcome)
        case .hang:
            do {
                try await Task.sleep(for: .seconds(600))
            } catch {
                return AttemptReport(outcome: .cancelled)
            }
            return AttemptReport(outcome: .wallTimeout)
        case .slow(let duration, let then):
            do {
                try await Task.sleep(for: duration)
            } catch {
                return AttemptReport(outcome: .cancelled)
            }
            return await play(then, onOutput: onOutput)
        }
    }
}
