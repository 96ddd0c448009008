import EdgyModel
import EdgyPolicy

/// What `POST /v1/policies/learn` asks of the host: run a workload under a policy with the
/// learning filter and propose the smallest policy that runs it. `edgyd` provides it on top of its
/// jail supervisor; the API only checks the request and passes the result through.
public protocol PolicyLearning: Sendable {
    /// The learning result as a JSON object, or why there is none.
    func learn(_ request: PolicyLearningInput) async throws(PolicyLearningFailure) -> [UInt8]
}

/// A checked learning request: a task body's workload and the policy it names.
public struct PolicyLearningInput: Sendable {
    /// The `--from` policy with the task's limits applied.
    public var policy: LoadedPolicy
    public var policyDirectory: String
    public var files: [TaskFile]
    public var command: [String]?
    public var stdin: [UInt8]
    public var env: [String: String]
    public var runs: Int
    public var name: String?
}

public enum PolicyLearningFailure: Error, Sendable {
    /// Another learning request is running on this host.
    case busy
    /// The workload did not succeed under its policy, or the request cannot be learned.
    case failed(String)
}
