import Foundation
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

    /// `key = value` for every field set, in `keys` order (TOML).
    static func rendered(_ overrides: LimitOverrides) -> [String] {
        guard let data = try? JSONEncoder().encode(overrides),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [] }
        return keys.compactMap { key in
            switch object[key] {
            case let s as String: "\(key) = \(Policy.toml(s))"
            case let n as NSNumber: "\(key) = \(n)"
            default: nil
            }
        }
    }

    /// The TOML names of every limit a task may override (from `PolicySchema`): what the API
    /// accepts and shows. `codingKeys` must be the same names, which a test checks.
    public static let keys: [String] = PolicySchema.keys.filter { $0.override != nil }.map(\.name)

    /// The keys of one kind of limit, for decoders that check values before the policy is known.
    public static func keys(of kind: LimitKind) -> [String] {
        PolicySchema.keys.filter { $0.override?.kind == kind }.map(\.name)
    }

    /// The JSON names of the fields, for the test that holds them equal to `keys`.
    public static let codingKeys: [String] = CodingKeys.allCases.map(\.rawValue)

    /// Every field set to `limits`' value: a policy's limits in the override vocabulary.
    public init(all limits: Policy.Limits) {
        self.init()
        for key in PolicySchema.keys { key.override?.copy(&self, limits) }
    }
}

/// What a limit's value is.
public enum LimitKind: Sendable, Hashable {
    /// A positive whole number (MiB, KiB, a count).
    case wholeNumber
    /// A positive number, fractions allowed (seconds).
    case number
    /// One of a few names (`output_overflow`).
    case choice
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
        for key in PolicySchema.keys { try key.override?.tighten(&out, overrides) }
        return out
    }
}

extension LimitOverrides {
    /// These overrides with `other`'s set keys over them (a step's over its task's).
    public func merging(_ other: LimitOverrides) -> LimitOverrides {
        LimitOverrides(
            wallTimeS: other.wallTimeS ?? wallTimeS, cpuTimeS: other.cpuTimeS ?? cpuTimeS,
            memoryMib: other.memoryMib ?? memoryMib, pids: other.pids ?? pids, openFiles: other.openFiles ?? openFiles,
            fileSizeMib: other.fileSizeMib ?? fileSizeMib, workdirMib: other.workdirMib ?? workdirMib, tmpMib: other.tmpMib ?? tmpMib,
            stdoutKib: other.stdoutKib ?? stdoutKib, stderrKib: other.stderrKib ?? stderrKib,
            outputOverflow: other.outputOverflow ?? outputOverflow, pendingSignals: other.pendingSignals ?? pendingSignals,
            mqueueKib: other.mqueueKib ?? mqueueKib, memlockKib: other.memlockKib ?? memlockKib)
    }
}
