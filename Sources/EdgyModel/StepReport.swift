/// How a case's stdout is checked against what was expected.
public enum CaseComparator: Sendable, Hashable, Codable {
    /// Byte for byte.
    case exact
    /// Ignoring whitespace at the ends of the output and at the end of every line.
    case trim
    /// Token by token (split on whitespace): numbers within `tolerance` (absolute or relative),
    /// other tokens equal.
    case float(tolerance: Double)
    /// The expected text is a pattern that must match the whole output (one final newline aside).
    case regex

    public static let defaultTolerance = 1e-6

    public var name: String {
        switch self {
        case .exact: "exact"
        case .trim: "trim"
        case .float: "float"
        case .regex: "regex"
        }
    }

    enum CodingKeys: String, CodingKey { case kind, tolerance }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "exact": self = .exact
        case "trim": self = .trim
        case "float": self = .float(tolerance: try c.decodeIfPresent(Double.self, forKey: .tolerance) ?? Self.defaultTolerance)
        case "regex": self = .regex
        case let other: throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown comparator \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .kind)
        if case .float(let tolerance) = self { try c.encode(tolerance, forKey: .tolerance) }
    }
}

/// A case's result, as graders name them.
public enum Verdict: String, Sendable, Hashable, Codable, CaseIterable {
    case accepted
    case wrongAnswer = "wrong_answer"
    case timeLimit = "time_limit"
    case memoryLimit = "memory_limit"
    case runtimeError = "runtime_error"
    case outputLimit = "output_limit"
    case seccompViolation = "seccomp_violation"
}

/// One case of a step: its verdict and its own usage.
public struct CaseReport: Sendable, Hashable, Codable {
    /// 0-based, in the step's `cases`.
    public var index: Int
    public var name: String?
    public var verdict: Verdict
    /// The jail's outcome (`exited`, `wall_timeout`, …).
    public var outcome: Outcome
    public var exitCode: Int32?
    public var signalName: String?
    public var seccompSyscall: String?
    /// Why the output was wrong ("line 3: expected 5, got 6"), for `wrong_answer`.
    public var detail: String?
    public var wallMs: Int
    public var cpuMs: Int
    public var memoryPeakBytes: UInt64?
    /// The start of stdout and stderr (`CaseReport.excerptBytes` each), as text.
    public var stdout: String
    public var stderr: String
    /// Bytes of stdout beyond the excerpt, including what the output cap dropped.
    public var stdoutOmittedBytes: UInt64

    /// How much of a case's output its report keeps: a thousand cases stay a few MiB.
    public static let excerptBytes = 4096

    public init(
        index: Int, name: String?, verdict: Verdict, outcome: Outcome, exitCode: Int32? = nil, signalName: String? = nil,
        seccompSyscall: String? = nil, detail: String? = nil, wallMs: Int = 0, cpuMs: Int = 0, memoryPeakBytes: UInt64? = nil,
        stdout: String = "", stderr: String = "", stdoutOmittedBytes: UInt64 = 0
    ) {
        self.index = index
        self.name = name
        self.verdict = verdict
        self.outcome = outcome
        self.exitCode = exitCode
        self.signalName = signalName
        self.seccompSyscall = seccompSyscall
        self.detail = detail
        self.wallMs = wallMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutOmittedBytes = stdoutOmittedBytes
    }

    enum CodingKeys: String, CodingKey {
        case index, name, verdict, outcome, detail, stdout, stderr
        case exitCode = "exit_code"
        case signalName = "signal_name"
        case seccompSyscall = "seccomp_syscall"
        case wallMs = "wall_ms"
        case cpuMs = "cpu_ms"
        case memoryPeakBytes = "memory_peak_bytes"
        case stdoutOmittedBytes = "stdout_omitted_bytes"
    }
}

/// The cases of a task (or of one step) at a glance.
public struct CasesSummary: Sendable, Hashable, Codable {
    public struct Failure: Sendable, Hashable, Codable {
        public var step: String
        public var index: Int
        public var verdict: Verdict

        public init(step: String, index: Int, verdict: Verdict) {
            self.step = step
            self.index = index
            self.verdict = verdict
        }
    }

    /// Cases given; `run` of them ran (fewer after a stop on the first failure or a cancel).
    public var total: Int
    public var run: Int
    public var passed: Int
    public var firstFailure: Failure?
    public var maxWallMs: Int
    public var maxCpuMs: Int
    public var maxMemoryBytes: UInt64

    public init(total: Int = 0, run: Int = 0, passed: Int = 0, firstFailure: Failure? = nil, maxWallMs: Int = 0, maxCpuMs: Int = 0, maxMemoryBytes: UInt64 = 0) {
        self.total = total
        self.run = run
        self.passed = passed
        self.firstFailure = firstFailure
        self.maxWallMs = maxWallMs
        self.maxCpuMs = maxCpuMs
        self.maxMemoryBytes = maxMemoryBytes
    }

    /// Counts one case that ran.
    public mutating func add(_ report: CaseReport, step: String) {
        run += 1
        if report.verdict == .accepted {
            passed += 1
        } else if firstFailure == nil {
            firstFailure = Failure(step: step, index: report.index, verdict: report.verdict)
        }
        maxWallMs = max(maxWallMs, report.wallMs)
        maxCpuMs = max(maxCpuMs, report.cpuMs)
        maxMemoryBytes = max(maxMemoryBytes, report.memoryPeakBytes ?? 0)
    }

    /// Both summaries' cases together, `self`'s first.
    public mutating func merge(_ other: CasesSummary) {
        total += other.total
        run += other.run
        passed += other.passed
        firstFailure = firstFailure ?? other.firstFailure
        maxWallMs = max(maxWallMs, other.maxWallMs)
        maxCpuMs = max(maxCpuMs, other.maxCpuMs)
        maxMemoryBytes = max(maxMemoryBytes, other.maxMemoryBytes)
    }

    enum CodingKeys: String, CodingKey {
        case total, run, passed
        case firstFailure = "first_failure"
        case maxWallMs = "max_wall_ms"
        case maxCpuMs = "max_cpu_ms"
        case maxMemoryBytes = "max_memory_bytes"
    }
}

/// One step of a multi-step task.
public struct StepReport: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Installs the task's dependencies (always the first step, when there is one).
        case dependencies
        /// Runs a command once.
        case run
        /// Runs a command once per case.
        case cases
    }

    public enum Status: String, Sendable, Hashable, Codable {
        case succeeded, failed
        /// Not run: an earlier step failed, or the task was cancelled.
        case skipped
    }

    public var name: String
    public var kind: Kind
    public var status: Status
    /// The step's jail (a `run` step); nil for the others.
    public var report: AttemptReport?
    public var dependencies: DependencyReport?
    public var cases: [CaseReport]?
    public var summary: CasesSummary?

    public init(name: String, kind: Kind, status: Status, report: AttemptReport? = nil, dependencies: DependencyReport? = nil, cases: [CaseReport]? = nil, summary: CasesSummary? = nil) {
        self.name = name
        self.kind = kind
        self.status = status
        self.report = report
        self.dependencies = dependencies
        self.cases = cases
        self.summary = summary
    }
}
