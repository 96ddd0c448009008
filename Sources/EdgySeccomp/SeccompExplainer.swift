import CSeccomp
import EdgyPolicy

/// What a policy's filter does with one syscall, and which rule decides it.
public struct SeccompExplanation: Sendable, Hashable, CustomStringConvertible {
    public enum Verdict: Sendable, Hashable {
        case allowed
        /// The syscall takes this action (the policy's default action).
        case denied(Policy.SeccompAction)
        /// Allowed only for some arguments; the rest take the default action (or ENOSYS for clone3).
        case conditional
        /// Neither a syscall nor a group the catalog knows.
        case unknown
    }

    public let syscall: String
    public let verdict: Verdict
    /// The rule, in words: "allowed by `@default` (via `@file-system`)", "listed in deny", …
    public let reason: String

    public var description: String {
        switch verdict {
        case .allowed: "\(syscall): \(reason)"
        case .denied(let action): "\(syscall): denied: \(reason) → \(action)"
        case .conditional: "\(syscall): conditional: \(reason)"
        case .unknown: "\(syscall): unknown syscall"
        }
    }
}

/// Answers "what happens to SYSCALL under this policy, and why", mirroring ``SeccompCompiler``.
public enum SeccompExplainer {
    public static func explain(_ syscall: String, in seccomp: Policy.Seccomp) -> SeccompExplanation {
        func answer(_ verdict: SeccompExplanation.Verdict, _ reason: String) -> SeccompExplanation {
            SeccompExplanation(syscall: syscall, verdict: verdict, reason: reason)
        }
        guard SyscallCatalog.allNames.contains(syscall) || seccomp_syscall_resolve_name(syscall) >= 0 else {
            return answer(.unknown, "unknown syscall")
        }
        let denied = seccomp.defaultAction
        if let path = firstPath(seccomp.deny, to: syscall) {
            return answer(.denied(denied), "listed in deny" + (path.first == syscall ? "" : " by \(describe(path))"))
        }
        guard let path = firstPath(seccomp.allow, to: syscall) else {
            return answer(.denied(denied), "not in the allow list")
        }
        let rule = path.first == syscall ? "allowed: listed in allow" : "allowed by \(describe(path))"
        if seccomp_syscall_resolve_name(syscall) < 0 {
            return answer(.denied(denied), "in the allow list, but libseccomp 2.5.4 cannot resolve it (the policy does not compile)")
        }
        let action = seccomp.defaultAction
        switch syscall {
        case "clone" where !seccomp.allowNamespaceClone:
            return answer(.conditional, "clone allowed without namespace flags (CLONE_NEW* → \(action)); \(rule)")
        case "clone3" where !seccomp.allowNamespaceClone:
            return answer(.conditional, "clone3 fails with ENOSYS so libc falls back to clone, whose flags are checked; \(rule)")
        case "socket":
            let families = seccomp.socketFamilies.isEmpty ? "no family" : seccomp.socketFamilies.joined(separator: ", ")
            return answer(.conditional, "socket allowed only for \(families) (others → \(action)); \(rule)")
        case "ioctl" where !seccomp.ioctlDeny.isEmpty:
            return answer(.conditional, "ioctl allowed except \(seccomp.ioctlDeny.joined(separator: ", ")) (→ \(action)); \(rule)")
        default:
            return answer(.allowed, rule)
        }
    }

    private static func firstPath(_ entries: [String], to syscall: String) -> [String]? {
        entries.lazy.compactMap { SyscallCatalog.path(from: $0, to: syscall) }.first
    }

    /// "`@default`", or "`@default` (via `@file-system`)" for a chain of groups.
    private static func describe(_ path: [String]) -> String {
        let head = "`\(path[0])`"
        guard path.count > 1 else { return head }
        return head + " (via " + path.dropFirst().map { "`\($0)`" }.joined(separator: " → ") + ")"
    }
}
