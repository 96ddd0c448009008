import EdgyJSON
import Foundation

/// The report of one attempt: a value, never a thrown error.
public struct AttemptReport: Sendable, Hashable, Codable {
    /// The report as JSON, in the one form both the store and the API write (keys sorted,
    /// slashes as they are). A worker encodes each report once, and both use those bytes.
    public func json() throws -> [UInt8] {
        try SortedJSON.encode(self)
    }

    public var outcome: Outcome
    public var exitCode: Int32?
    public var signal: Int32?
    public var signalName: String?
    /// The first syscall a process of the jail was killed for by the filter (see docs/jail-lifecycle.md).
    public var seccompSyscall: String?
    public var setup: SetupFailure?
    public var wallMs: Int
    public var cpuUserMs: Int
    public var cpuSysMs: Int
    public var maxRssKib: Int
    public var memoryPeakBytes: UInt64?
    public var oomKills: Int
    public var pidsPeak: Int?
    public var pidsLimitHits: Int
    /// Egress jails only: traffic and refused connections.
    public var network: NetworkReport?
    /// Tasks with dependencies only: the layer the run mounted, or why none could be installed.
    public var dependencies: DependencyReport?
    /// Policies with `[outputs]`: the files collected from the working directory.
    public var outputs: OutputsReport?
    /// A multi-step task's steps, in order (skipped ones included); nil for a one-command task.
    public var steps: [StepReport]?
    /// Every case of every step, summed up; nil when the task has no cases.
    public var cases: CasesSummary?
    /// The collected files' bytes by sha256, on their way from the jail to the blob store: never
    /// encoded (the report holds only their list).
    public var outputContents: [String: [UInt8]] = [:]
    /// The working directory's files after the workload, when the request kept them (a step of a
    /// multi-step task); not coded: the next step gets them, the store does not.
    public var workspace: Workspace?
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutTruncatedBytes: UInt64
    public var stderrTruncatedBytes: UInt64
    /// Seconds since the epoch.
    public var startedAt: Double
    public var finishedAt: Double
    public var policyName: String
    public var policyDigest: String

    public init(
        outcome: Outcome, exitCode: Int32? = nil, signal: Int32? = nil, signalName: String? = nil,
        seccompSyscall: String? = nil, setup: SetupFailure? = nil, wallMs: Int = 0, cpuUserMs: Int = 0,
        cpuSysMs: Int = 0, maxRssKib: Int = 0, memoryPeakBytes: UInt64? = nil, oomKills: Int = 0,
        pidsPeak: Int? = nil, pidsLimitHits: Int = 0, stdout: [UInt8] = [], stderr: [UInt8] = [],
        stdoutTruncatedBytes: UInt64 = 0, stderrTruncatedBytes: UInt64 = 0, startedAt: Double = 0,
        finishedAt: Double = 0, policyName: String = "", policyDigest: String = ""
    ) {
        self.outcome = outcome
        self.exitCode = exitCode
        self.signal = signal
        self.signalName = signalName
        self.seccompSyscall = seccompSyscall
        self.setup = setup
        self.wallMs = wallMs
        self.cpuUserMs = cpuUserMs
        self.cpuSysMs = cpuSysMs
        self.maxRssKib = maxRssKib
        self.memoryPeakBytes = memoryPeakBytes
        self.oomKills = oomKills
        self.pidsPeak = pidsPeak
        self.pidsLimitHits = pidsLimitHits
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutTruncatedBytes = stdoutTruncatedBytes
        self.stderrTruncatedBytes = stderrTruncatedBytes
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.policyName = policyName
        self.policyDigest = policyDigest
    }

    /// The stdout bytes as text (invalid UTF-8 replaced).
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// Output as text that any store and JSON reader takes: invalid UTF-8 and NUL (which
    /// PostgreSQL's text and JSONB refuse) become U+FFFD. The exact bytes travel as base64.
    public static func storableText(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        return bytes.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    /// JSON carries the output twice: `stdout`/`stderr` as text for people and the prototype's
    /// clients (invalid UTF-8 replaced), and `stdout_base64`/`stderr_base64`, the exact bytes,
    /// which decoding prefers. Reports stored as JSON thus keep binary output unchanged.
    enum CodingKeys: String, CodingKey {
        case outcome, signal, setup, stdout, stderr
        case stdoutBase64 = "stdout_base64"
        case stderrBase64 = "stderr_base64"
        case exitCode = "exit_code"
        case signalName = "signal_name"
        case seccompSyscall = "seccomp_syscall"
        case wallMs = "wall_ms"
        case cpuUserMs = "cpu_user_ms"
        case cpuSysMs = "cpu_sys_ms"
        case maxRssKib = "max_rss_kib"
        case memoryPeakBytes = "memory_peak_bytes"
        case oomKills = "oom_kills"
        case pidsPeak = "pids_peak"
        case pidsLimitHits = "pids_limit_hits"
        case stdoutTruncatedBytes = "stdout_truncated_bytes"
        case stderrTruncatedBytes = "stderr_truncated_bytes"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case policyName = "policy"
        case policyDigest = "policy_digest"
        case network, dependencies, outputs, steps, cases
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        outcome = try c.decode(Outcome.self, forKey: .outcome)
        exitCode = try c.decodeIfPresent(Int32.self, forKey: .exitCode)
        signal = try c.decodeIfPresent(Int32.self, forKey: .signal)
        signalName = try c.decodeIfPresent(String.self, forKey: .signalName)
        seccompSyscall = try c.decodeIfPresent(String.self, forKey: .seccompSyscall)
        setup = try c.decodeIfPresent(SetupFailure.self, forKey: .setup)
        wallMs = try c.decode(Int.self, forKey: .wallMs)
        cpuUserMs = try c.decode(Int.self, forKey: .cpuUserMs)
        cpuSysMs = try c.decode(Int.self, forKey: .cpuSysMs)
        maxRssKib = try c.decode(Int.self, forKey: .maxRssKib)
        memoryPeakBytes = try c.decodeIfPresent(UInt64.self, forKey: .memoryPeakBytes)
        oomKills = try c.decode(Int.self, forKey: .oomKills)
        pidsPeak = try c.decodeIfPresent(Int.self, forKey: .pidsPeak)
        pidsLimitHits = try c.decodeIfPresent(Int.self, forKey: .pidsLimitHits) ?? 0
        network = try c.decodeIfPresent(NetworkReport.self, forKey: .network)
        dependencies = try c.decodeIfPresent(DependencyReport.self, forKey: .dependencies)
        outputs = try c.decodeIfPresent(OutputsReport.self, forKey: .outputs)
        steps = try c.decodeIfPresent([StepReport].self, forKey: .steps)
        cases = try c.decodeIfPresent(CasesSummary.self, forKey: .cases)
        stdout = try Self.decodeOutput(c, base64: .stdoutBase64, text: .stdout)
        stderr = try Self.decodeOutput(c, base64: .stderrBase64, text: .stderr)
        stdoutTruncatedBytes = try c.decode(UInt64.self, forKey: .stdoutTruncatedBytes)
        stderrTruncatedBytes = try c.decode(UInt64.self, forKey: .stderrTruncatedBytes)
        startedAt = try c.decode(Double.self, forKey: .startedAt)
        finishedAt = try c.decode(Double.self, forKey: .finishedAt)
        policyName = try c.decode(String.self, forKey: .policyName)
        policyDigest = try c.decode(String.self, forKey: .policyDigest)
    }

    /// The exact bytes from `base64`, or (reports written before it existed) the text's UTF-8.
    private static func decodeOutput(_ c: KeyedDecodingContainer<CodingKeys>, base64: CodingKeys, text: CodingKeys) throws -> [UInt8] {
        if let encoded = try c.decodeIfPresent(String.self, forKey: base64) {
            guard let data = Data(base64Encoded: encoded) else {
                throw DecodingError.dataCorruptedError(forKey: base64, in: c, debugDescription: "not base64")
            }
            return Array(data)
        }
        return Array(try c.decode(String.self, forKey: text).utf8)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(signal, forKey: .signal)
        try c.encode(signalName, forKey: .signalName)
        try c.encode(seccompSyscall, forKey: .seccompSyscall)
        try c.encode(setup, forKey: .setup)
        try c.encode(wallMs, forKey: .wallMs)
        try c.encode(cpuUserMs, forKey: .cpuUserMs)
        try c.encode(cpuSysMs, forKey: .cpuSysMs)
        try c.encode(maxRssKib, forKey: .maxRssKib)
        try c.encode(memoryPeakBytes, forKey: .memoryPeakBytes)
        try c.encode(oomKills, forKey: .oomKills)
        try c.encode(pidsPeak, forKey: .pidsPeak)
        try c.encode(pidsLimitHits, forKey: .pidsLimitHits)
        try c.encodeIfPresent(network, forKey: .network)
        try c.encodeIfPresent(dependencies, forKey: .dependencies)
        try c.encodeIfPresent(outputs, forKey: .outputs)
        try c.encodeIfPresent(steps, forKey: .steps)
        try c.encodeIfPresent(cases, forKey: .cases)
        try c.encode(Self.storableText(stdout), forKey: .stdout)
        try c.encode(Self.storableText(stderr), forKey: .stderr)
        try c.encode(Data(stdout).base64EncodedString(), forKey: .stdoutBase64)
        try c.encode(Data(stderr).base64EncodedString(), forKey: .stderrBase64)
        try c.encode(stdoutTruncatedBytes, forKey: .stdoutTruncatedBytes)
        try c.encode(stderrTruncatedBytes, forKey: .stderrTruncatedBytes)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(policyName, forKey: .policyName)
        try c.encode(policyDigest, forKey: .policyDigest)
    }
}
