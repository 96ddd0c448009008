/// A task's own limits: each set field must be at most the policy's (a task may tighten limits,
/// never loosen them).
///
/// Coded with the TOML key names (`memory_mib`), so a task's JSON uses the policy vocabulary.
public struct LimitOverrides: Sendable, Hashable, Codable {
    public var wallTimeS: Double?
    public var cpuTimeS: Double?
    public var memoryMib: Int?
    public var pids: Int?
    public var openFiles: Int?
    public var fileSizeMib: Int?
    public var workdirMib: Int?
    public var tmpMib: Int?
    public var stdoutKib: Int?
    public var stderrKib: Int?
    /// `kill` is tighter than `truncate`.
    public var outputOverflow: Policy.OutputOverflow?
    public var pendingSignals: Int?
    public var mqueueKib: Int?
    public var memlockKib: Int?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case wallTimeS = "wall_time_s", cpuTimeS = "cpu_time_s", memoryMib = "memory_mib", pids
        case openFiles = "open_files", fileSizeMib = "file_size_mib", workdirMib = "workdir_mib", tmpMib = "tmp_mib"
        case stdoutKib = "stdout_kib", stderrKib = "stderr_kib", outputOverflow = "output_overflow"
        case pendingSignals = "pending_signals", mqueueKib = "mqueue_kib", memlockKib = "memlock_kib"
    }

    public init(
        wallTimeS: Double? = nil, cpuTimeS: Double? = nil, memoryMib: Int? = nil, pids: Int? = nil,
        openFiles: Int? = nil, fileSizeMib: Int? = nil, workdirMib: Int? = nil, tmpMib: Int? = nil,
        stdoutKib: Int? = nil, stderrKib: Int? = nil, outputOverflow: Policy.OutputOverflow? = nil,
        pendingSignals: Int? = nil, mqueueKib: Int? = nil, memlockKib: Int? = nil
    ) {
        self.wallTimeS = wallTimeS
        self.cpuTimeS = cpuTimeS
        self.memoryMib = memoryMib
        self.pids = pids
        self.openFiles = openFiles
        self.fileSizeMib = fileSizeMib
        self.workdirMib = workdirMib
        self.tmpMib = tmpMib
        self.stdoutKib = stdoutKib
        self.stderrKib = stderrKib
        self.outputOverflow = outputOverflow
        self.pendingSignals = pendingSignals
        self.mqueueKib = mqueueKib
        self.memlockKib = memlockKib
    }

    public var isEmpty: Bool { self == LimitOverrides() }

    /// The TOML names of every limit a task may override: what the API accepts and shows.
    public static let keys: [String] = CodingKeys.allCases.map(\.rawValue)

    /// Every field set to `limits`' value: a policy's limits in the override vocabulary.
    public init(all limits: Policy.Limits) {
        self.init(
            wallTimeS: limits.wallTimeS, cpuTimeS: limits.cpuTimeS, memoryMib: limits.memoryMib, pids: limits.pids,
            openFiles: limits.openFiles, fileSizeMib: limits.fileSizeMib, workdirMib: limits.workdirMib, tmpMib: limits.tmpMib,
            stdoutKib: limits.stdoutKib, stderrKib: limits.stderrKib, outputOverflow: limits.outputOverflow,
            pendingSignals: limits.pendingSignals, mqueueKib: limits.mqueueKib, memlockKib: limits.memlockKib)
    }
}

/// A task asked for a limit looser than its policy allows, or for a value that is not a limit.
public struct PolicyOverrideError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The TOML key, e.g. `memory_mib`.
    public var key: String
    /// The value the task asked for, as text.
    public var requested: String
    /// The policy's value: the loosest a task may ask for.
    public var maximum: String

    public init(key: String, requested: String, maximum: String) {
        self.key = key
        self.requested = requested
        self.maximum = maximum
    }

    public var description: String {
        if maximum == "> 0" { return "limit \(key) = \(requested) must be positive" }
        return "limit \(key) = \(requested) is looser than the policy allows (maximum \(maximum))"
    }
}

extension Policy.Limits {
    /// These limits tightened by a task's overrides.
    /// - Throws: `PolicyOverrideError` naming the first key that would loosen a limit (or is not positive).
    public func applying(_ overrides: LimitOverrides) throws(PolicyOverrideError) -> Policy.Limits {
        var out = self
        func tighten<T: Comparable & Numeric>(_ key: String, _ value: T?, _ limit: T, _ set: (T) -> Void) throws(PolicyOverrideError) {
            guard let value else { return }
            guard value > 0 else { throw PolicyOverrideError(key: key, requested: "\(value)", maximum: "> 0") }
            guard value <= limit else {
                throw PolicyOverrideError(key: key, requested: "\(value)", maximum: "\(limit)")
            }
            set(value)
        }
        try tighten("wall_time_s", overrides.wallTimeS, wallTimeS) { out.wallTimeS = $0 }
        try tighten("cpu_time_s", overrides.cpuTimeS, cpuTimeS) { out.cpuTimeS = $0 }
        try tighten("memory_mib", overrides.memoryMib, memoryMib) { out.memoryMib = $0 }
        try tighten("pids", overrides.pids, pids) { out.pids = $0 }
        try tighten("open_files", overrides.openFiles, openFiles) { out.openFiles = $0 }
        try tighten("file_size_mib", overrides.fileSizeMib, fileSizeMib) { out.fileSizeMib = $0 }
        try tighten("workdir_mib", overrides.workdirMib, workdirMib) { out.workdirMib = $0 }
        try tighten("tmp_mib", overrides.tmpMib, tmpMib) { out.tmpMib = $0 }
        try tighten("stdout_kib", overrides.stdoutKib, stdoutKib) { out.stdoutKib = $0 }
        try tighten("stderr_kib", overrides.stderrKib, stderrKib) { out.stderrKib = $0 }
        try tighten("pending_signals", overrides.pendingSignals, pendingSignals) { out.pendingSignals = $0 }
        try tighten("mqueue_kib", overrides.mqueueKib, mqueueKib) { out.mqueueKib = $0 }
        try tighten("memlock_kib", overrides.memlockKib, memlockKib) { out.memlockKib = $0 }
        if let overflow = overrides.outputOverflow {
            guard overflow == .kill || outputOverflow == .truncate else {
                throw PolicyOverrideError(key: "output_overflow", requested: overflow.rawValue, maximum: outputOverflow.rawValue)
            }
            out.outputOverflow = overflow
        }
        return out
    }
}
