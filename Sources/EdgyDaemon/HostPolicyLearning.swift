import EdgyAPI
import EdgyJail
import EdgyLearn
import Foundation
import Synchronization

/// `POST /v1/policies/learn` on this host's jail supervisor, one request at a time: a learning
/// run stops the workload at every syscall, so two at once would only make both slower, and the
/// runs must not crowd out the worker pool's jails.
final class HostPolicyLearning: PolicyLearning {
    private let supervisor: JailSupervisor
    private let running = Mutex(false)

    init(supervisor: JailSupervisor) {
        self.supervisor = supervisor
    }

    func learn(_ input: PolicyLearningInput) async throws(PolicyLearningFailure) -> [UInt8] {
        let acquired = running.withLock { busy in
            if busy { return false }
            busy = true
            return true
        }
        guard acquired else { throw .busy }
        defer { running.withLock { $0 = false } }
        let request = LearningRequest(
            from: input.policy, policyDirectory: input.policyDirectory, files: input.files, command: input.command,
            stdin: input.stdin, environment: input.env, runs: input.runs, name: input.name)
        let result: LearningResult
        do {
            result = try await PolicyLearner.learn(request, supervisor: supervisor)
        } catch {
            throw .failed(error.description)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(result) else { throw .failed("the result could not be encoded") }
        return Array(data)
    }
}
