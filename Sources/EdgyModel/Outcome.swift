/// How an attempt ended. The service's own faults (`setupError`, `lost`) are kept apart from the
/// workload's (everything else), because only the former are always retried.
public enum Outcome: String, Sendable, Hashable, Codable, CaseIterable {
    case exited
    case signaled
    case wallTimeout = "wall_timeout"
    case cpuTimeout = "cpu_timeout"
    case memoryLimit = "memory_limit"
    case seccompViolation = "seccomp_violation"
    case outputLimit = "output_limit"
    case setupError = "setup_error"
    case cancelled
    case lost
    /// The task's dependencies could not be installed (the package does not exist, the install
    /// failed); its `dependencies` report holds the install's log. The workload never ran.
    case dependencyError = "dependency_error"

    /// True when Edgy, not the workload, is to blame.
    public var isServiceFault: Bool { self == .setupError || self == .lost }
}

/// The stage of the spawn that failed, for `setup_error` attempts.
public struct SetupFailure: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The checklist step, e.g. "filesystem", "execve".
    public var stage: String
    /// The errno name, e.g. "ENOENT".
    public var errno: String?
    /// What was being done, e.g. "mount /usr", "execve /bin/nope".
    public var detail: String?

    public init(stage: String, errno: String?, detail: String?) {
        self.stage = stage
        self.errno = errno
        self.detail = detail
    }

    /// "mount /usr: ENOENT", or "stage: ENOENT" without a detail.
    public var description: String {
        let what = detail ?? stage
        return errno.map { "\(what): \($0)" } ?? what
    }
}
