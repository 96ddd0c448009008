/// Which cgroup interface the host offers.
public enum CgroupVersion: String, Sendable {
    /// Separate controller hierarchies (`/sys/fs/cgroup/<controller>`).
    case v1
    /// The unified hierarchy (`cgroup2`).
    case v2
}

/// The limits of one jail attempt's cgroup. `nil` means "no limit of that kind".
public struct CgroupLimits: Sendable, Hashable {
    /// Memory limit in bytes; swap is always forbidden when this is set (v1 `memsw` equal to it,
    /// v2 `memory.swap.max = 0`).
    public var memoryBytes: UInt64?
    /// Maximum number of tasks (processes and threads) in the group.
    public var pidsMax: Int?
    /// CFS bandwidth as a fraction of cores, e.g. `1.0` is one full core; period is 100 ms.
    public var cpuMaxCores: Double?

    public init(memoryBytes: UInt64? = nil, pidsMax: Int? = nil, cpuMaxCores: Double? = nil) {
        self.memoryBytes = memoryBytes
        self.pidsMax = pidsMax
        self.cpuMaxCores = cpuMaxCores
    }

    /// Rejects values the kernel would refuse or that make no sense.
    func validate() throws(CgroupError) {
        if let m = memoryBytes, m < 4096 {
            throw CgroupError(.invalidLimit, "memory limit \(m) bytes is below one page")
        }
        if let p = pidsMax, p < 1 {
            throw CgroupError(.invalidLimit, "pids limit \(p) is below 1")
        }
        if let c = cpuMaxCores, !(c.isFinite && c > 0) {
            throw CgroupError(.invalidLimit, "cpu limit \(c) cores is not a positive number")
        }
    }
}

/// What the group used, read once after the reap.
///
/// Counters the host does not provide are `nil` (e.g. `memory.peak` before Linux 5.19).
public struct CgroupStats: Sendable, Hashable {
    /// High-water mark of memory charged to the group (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    public var memoryPeakBytes: UInt64?
    /// Processes killed by the OOM killer inside the group (v1 `memory.oom_control` `oom_kill`,
    /// v2 `memory.events` `oom_kill`).
    public var oomKills: Int
    /// Times the memory limit was hit (v1 `memory.failcnt` + `memory.memsw.failcnt`, v2 `memory.events` `max`).
    /// - Important: On v1 with swap accounting, Linux 6.13+ leaves this at 0 (the memsw counter
    ///   fails first and its failcnt is not tracked); `oomKills` is the reliable signal.
    public var memoryLimitHits: Int
    /// CPU time of the group in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec` × 1000).
    public var cpuUsageNanos: UInt64?
    /// User and system CPU time of the whole group (v1 `cpuacct.usage_user`/`usage_sys`, v2
    /// `cpu.stat` `user_usec`/`system_usec`): unlike the reaped process's rusage, they include
    /// descendants killed with the group.
    public var cpuUserNanos: UInt64?
    public var cpuSystemNanos: UInt64?
    /// High-water mark of tasks (`pids.peak`, Linux 6.1+).
    public var pidsPeak: Int?
    /// Forks refused by the pids limit (`pids.events` `max`).
    public var pidsLimitHits: Int

    public init(
        memoryPeakBytes: UInt64? = nil, oomKills: Int = 0, memoryLimitHits: Int = 0,
        cpuUsageNanos: UInt64? = nil, pidsPeak: Int? = nil, pidsLimitHits: Int = 0
    ) {
        self.memoryPeakBytes = memoryPeakBytes
        self.oomKills = oomKills
        self.memoryLimitHits = memoryLimitHits
        self.cpuUsageNanos = cpuUsageNanos
        self.pidsPeak = pidsPeak
        self.pidsLimitHits = pidsLimitHits
    }
}
