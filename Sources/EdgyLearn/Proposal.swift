import EdgyJail
import EdgyPolicy
import EdgySeccomp
import Foundation

/// The smallest policy that gives a workload what it used, built from a `--from` policy and what
/// learning runs recorded: the `--from` policy with its allow list replaced by the syscalls used,
/// its socket families by those used, and its mounts trimmed to those a used path lies under.
/// Everything else (limits, identity, network, environment, outputs) is the `--from` policy's.
public struct Proposal: Sendable {
    /// The proposed effective policy.
    public let policy: Policy
    /// What the `--from` policy allowed that the proposal does not.
    public let removed: Removal
    /// One line per call the workload made that the `--from` policy refuses.
    public let warnings: [String]

    public struct Removal: Sendable, Hashable, Codable {
        public var syscalls: [String] = []
        public var mounts: [String] = []
        public var socketFamilies: [String] = []
    }

    /// - Parameters:
    ///   - from: the effective `--from` policy.
    ///   - allowedBefore: the syscalls it allows (`SeccompCompiler.allowedSyscallNames`).
    ///   - use: the merged record of the learning runs.
    ///   - command: the command the runs gave instead of the policy's, if any.
    ///   - name: the proposal's name.
    public init(from: Policy, allowedBefore: Set<String>, use: LearnedUse, command: [String]?, name: String) {
        var policy = from
        policy.name = name
        policy.extends = nil
        let used = Set(use.syscalls.keys).filter { allowedBefore.contains($0) || from.seccomp.defaultAction == .log }
            .union(Self.timingDependent.intersection(allowedBefore))
        policy.seccomp.allow = used.sorted()
        // A name in `deny` that is not in the new allow list changes nothing; keeping the
        // `--from` deny list keeps the proposal reading as the same family of policy.
        policy.seccomp.socketFamilies = from.seccomp.socketFamilies.filter { use.socketFamilies[$0.lowercased()] != nil }
        policy.mounts = from.mounts.filter { mount in Self.isUsed(mount.destination, by: use) }
        if policy.run.command.isEmpty, let command { policy.run.command = command }
        policy.description = "Learned from `\(from.name)`: only what the workload used in \(use.runs) run\(use.runs == 1 ? "" : "s")"
        self.policy = policy

        var removal = Removal()
        removal.syscalls = allowedBefore.subtracting(used).sorted()
        removal.mounts = from.mounts.filter { !policy.mounts.contains($0) }.map(\.destination)
        removal.socketFamilies = from.seccomp.socketFamilies.filter { !policy.seccomp.socketFamilies.contains($0) }
        removed = removal
        warnings = use.refused.sorted { $0.key < $1.key }.map { what, refusal in
            "\(what): \(refusal.reason); refused with \(refusal.errno), not added (\(Self.describe(refusal.count)))"
        }
    }

    /// Calls whose use depends on timing, not on the program: a thread that finds a lock taken
    /// yields, a signal that interrupts a sleep restarts it. One run makes them and the next does
    /// not (node's threads yield in some runs only), so a proposal keeps them whenever `--from`
    /// allows them; they reach nothing but the scheduler.
    static let timingDependent: Set<String> = ["sched_yield", "restart_syscall"]

    /// Whether some path the workload used is `destination` or lies under it.
    static func isUsed(_ destination: String, by use: LearnedUse) -> Bool {
        let prefix = destination.hasSuffix("/") ? destination : destination + "/"
        return use.files.keys.contains { $0 == destination || $0.hasPrefix(prefix) }
    }

    /// "12 calls, first at 3.1 ms" (", in run 2" when it was not the first run).
    static func describe(_ count: LearnedUse.Count) -> String {
        guard count.count > 0 else { return "allowed without asking: the jail needs it to start" }
        if count.firstRun == 0 { return "seen only when verifying" }
        var text = "\(count.count) call\(count.count == 1 ? "" : "s"), first at \(String(format: "%.1f", count.firstMs)) ms"
        if count.firstRun > 1 { text += " of run \(count.firstRun)" }
        return text
    }

    /// The proposal as a policy file. It `extends` `parent` when given (writing only what differs
    /// from it), else stands alone. The allow list has one commented line per syscall.
    public func render(use: LearnedUse, over parent: (name: String, policy: Policy)?, header: [String]) -> String {
        let width = (policy.seccomp.allow.map(\.count).max() ?? 0) + 3
        let entries = policy.seccomp.allow.map { name in
            let quoted = "\"\(name)\","
            return "  " + quoted.padding(toLength: max(width, quoted.count), withPad: " ", startingAt: 0)
                + " # " + (use.syscalls[name].map(Self.describe)
                    ?? (Self.timingDependent.contains(name) ? "kept: whether it runs depends on timing" : Self.describe(.init())))
        }
        let allow = "allow = [\n" + entries.joined(separator: "\n") + "\n]"
        var body: String?
        if let parent {
            body = policy.renderTOML(over: parent.policy, parentName: parent.name, replacing: ["seccomp.allow": allow])
        }
        if body == nil {
            body = policy.renderTOML(replacing: ["seccomp.allow": allow])
        }
        return header.map { $0.isEmpty ? "#\n" : "# \($0)\n" }.joined() + "\n" + body!
    }
}
