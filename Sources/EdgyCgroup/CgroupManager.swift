import Glibc
import EdgySystem
import SystemPackage

/// Owns the Edgy parent group and creates one child group per jail attempt.
///
/// Layout: v1 `/sys/fs/cgroup/<controller>/<parent>/<jail>` in each hierarchy Edgy uses
/// (memory, pids, cpu, cpuacct, freezer; co-mounted controllers share a directory);
/// v2 `<base>/<parent>/<jail>`, where `<base>` is this process's own group (or the root), with
/// `+memory +pids +cpu` in the base's and the parent's `cgroup.subtree_control`. Neither holds
/// processes itself (the v2 "no internal processes" rule): this process moves into
/// `<base>/supervisor` first, and the parent holds only jail groups.
///
/// v1 notes: `memory.use_hierarchy` is not touched: it is always 1 since Linux 5.x (writing 0 is
/// refused), so a jail's charges also count against the parent. `memory.oom_control` is left with
/// the OOM killer enabled, so the kernel kills inside the group and `oom_kill` counts it.
/// `memory.swappiness` is not used to mean "no swap": swap is forbidden with `memsw` equal to the
/// limit, and a host with active swap but no `memsw` files fails `check` instead.
///
/// - Important: On v2 hosts the daemon runs inside a delegated subtree (systemd `Delegate=yes`,
///   or a container with a cgroup namespace); controllers not delegated to it are reported by
///   `CgroupHost.check` with what to change.
public final class CgroupManager: Sendable {
    public let host: CgroupHost
    /// The sanitized parent group name.
    public let parentName: String
    /// One directory per hierarchy (v1) or the single v2 directory, in attach order.
    let parentDirs: [String]
    /// v1: controller → parent directory in its hierarchy.
    let v1ParentFor: [String: String]
    /// v2: controllers enabled for jail groups (the parent's `cgroup.subtree_control`).
    let v2Enabled: Set<String>
    /// `parentDirs` held open (`O_PATH`), so that each jail group is created and opened by its
    /// name alone instead of by its whole path; -1 where an open failed.
    private let parentFDs: [Int32]
    /// v1, when asked for: groups kept between jails in the reusable hierarchies.
    let spares: SpareGroups?

    /// Creates (or reuses) the parent group.
    ///
    /// - Parameters:
    ///   - host: The detected host layout.
    ///   - parentName: Name of the parent group under each hierarchy root; sanitized to `[A-Za-z0-9_.-]`.
    ///   - spareGroups: v1: how many groups of the reusable hierarchies (freezer, cpu, cpuacct)
    ///     to keep between jails instead of removing and making them again (`SpareGroups`); 0
    ///     keeps none. For a long-lived supervisor; kept groups are removed with the manager, or
    ///     by the next `reapLeftovers` if the process dies. Ignored on v2 (one directory a jail).
    /// - Throws: `CgroupError` if a directory cannot be created, a controller cannot be enabled, or
    ///   the host cannot kill a group as a whole (v1 freezer not mounted; v2 without `cgroup.kill`, Linux < 5.14).
    public init(host: CgroupHost, parentName: String = "edgy", spareGroups: Int = 0) throws(CgroupError) {
        self.host = host
        let parent = try sanitizeCgroupName(parentName)
        self.parentName = parent
        switch host.version {
        case .v1:
            guard host.v1Mounts["freezer"] != nil else {
                throw CgroupError(.missingController, "cgroup v1 freezer not mounted (needed to kill a group)", path: "/sys/fs/cgroup/freezer")
            }
            var dirs: [String] = []
            var byController: [String: String] = [:]
            // Freezer first: a task attached there can always be killed as part of the group.
            for c in ["freezer", "memory", "pids", "cpu", "cpuacct"] {
                guard let mount = host.v1Mounts[c] else { continue }
                let dir = mount + "/" + parent
                byController[c] = dir
                if !dirs.contains(dir) {
                    try CgroupFS.mkdir(dir, allowExisting: true)
                    dirs.append(dir)
                }
            }
            parentDirs = dirs
            parentFDs = dirs.map(JailCgroup.openDirectory)
            v1ParentFor = byController
            v2Enabled = []
            // A hierarchy is reusable when every controller Edgy uses there is (co-mounted cpu,cpuacct is).
            let reusable = dirs.filter { dir in
                byController.allSatisfy { $0.value != dir || reusableV1Controllers.contains($0.key) }
            }
            spares = spareGroups > 0 && !reusable.isEmpty ? SpareGroups(parents: reusable, capacity: spareGroups) : nil
        case .v2:
            let wanted = ["memory", "pids", "cpu"].filter { host.v2Controllers.contains($0) }
            var base = host.v2Base
            do throws(CgroupError) {
                try Self.enableV2(wanted, in: base, isRoot: base == host.v2Root)
            } catch where error.errno == .resourceBusy && base != host.v2Root {
                // Our group is shared (`edgy run` from a login session's scope, not a delegated
                // unit): jails go under the hierarchy's root instead, as root may do.
                base = host.v2Root
                try Self.enableV2(wanted, in: base, isRoot: true)
            }
            let dir = base + "/" + parent
            try CgroupFS.mkdir(dir, allowExisting: true)
            guard CgroupFS.exists(dir + "/cgroup.kill") else {
                throw CgroupError(.missingController, "cgroup.kill missing (Linux 5.14+ needed to kill a group)", path: dir + "/cgroup.kill")
            }
            for c in wanted {
                try CgroupFS.write(dir + "/cgroup.subtree_control", "+" + c, what: "enable controller \(c) for jail groups")
            }
            let enabled = CgroupFS.read(dir + "/cgroup.subtree_control") ?? ""
            parentDirs = [dir]
            parentFDs = [JailCgroup.openDirectory(dir)]
            spares = nil
            v1ParentFor = [:]
            v2Enabled = Set(enabled.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        }
    }

    deinit {
        spares?.close()
        for fd in parentFDs where fd >= 0 { _ = Glibc.close(fd) }
    }

    /// v1: how many kept groups wait for a jail (`spareGroups`); 0 on v2.
    public var spareCount: Int { spares?.count ?? 0 }

    /// Removes the kept groups, at shutdown; groups of jails that end later are removed whole.
    public func removeSpareGroups() {
        spares?.close()
    }

    /// The parent directories of jail groups: one per v1 hierarchy, or the single v2 one.
    public var parentDirectories: [String] { parentDirs }

    /// Enables `controllers` for the children of `base`.
    ///
    /// A non-root v2 group that enables controllers for its children may hold no processes
    /// itself, so unless `base` is the real root, this process first moves into the leaf
    /// `base/supervisor` (as systemd's delegation documentation prescribes). In a cgroup
    /// namespace the root seen here is not the real one: an `EBUSY` there also means "move first".
    private static func enableV2(_ controllers: [String], in base: String, isRoot: Bool) throws(CgroupError) {
        let enabled = Set((CgroupFS.read(base + "/cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        let missing = controllers.filter { !enabled.contains($0) }
        if !isRoot { try moveIntoLeaf(base) }
        for c in missing {
            do throws(CgroupError) {
                try CgroupFS.write(base + "/cgroup.subtree_control", "+" + c, what: "enable controller \(c) below \(base)")
            } catch where error.errno == .resourceBusy && isRoot {
                try moveIntoLeaf(base)
                try CgroupFS.write(base + "/cgroup.subtree_control", "+" + c, what: "enable controller \(c) below \(base)")
            } catch where error.errno == .resourceBusy {
                throw CgroupError(
                    .io, "other processes share this process's cgroup, so it cannot enable controllers for its jails; run it alone in a group of its own (a systemd unit with Delegate=yes, or systemd-run --scope -p Delegate=yes)",
                    path: base + "/cgroup.procs", errno: .resourceBusy)
            }
        }
    }

    /// Moves this whole process (every thread) into `base/supervisor`.
    private static func moveIntoLeaf(_ base: String) throws(CgroupError) {
        let leaf = base + "/" + CgroupHost.supervisorLeaf
        try CgroupFS.mkdir(leaf, allowExisting: true)
        try CgroupFS.write(leaf + "/cgroup.procs", String(getpid()), what: "move this process into a leaf group")
    }

    /// Creates a jail group with `limits` applied, ready for `attach` (or `CLONE_INTO_CGROUP` on v2).
    ///
    /// - Parameters:
    ///   - name: Unique per attempt; sanitized to `[A-Za-z0-9_.-]` (see `JailCgroup.name`).
    ///   - limits: Every non-nil limit is enforced or this throws.
    /// - Throws: `CgroupError` if a limit cannot be enforced, the group already exists, or a write
    ///   fails. Nothing is left behind on failure.
    public func create(name: String, limits: CgroupLimits) throws(CgroupError) -> JailCgroup {
        try host.check(requiring: limits)
        let jailName = try sanitizeCgroupName(name)
        switch host.version {
        case .v1:
            guard let spares else { return try createV1(jailName, limits, spare: nil) }
            if let kept = spares.take() {
                // A failure discards the spare (its directories may be gone): then a new one.
                if let group = try? createV1(jailName, limits, spare: (kept, reused: true)) { return group }
            }
            return try createV1(jailName, limits, spare: (SpareGroup.fresh(), reused: false))
        case .v2:
            return try createV2(jailName, limits)
        }
    }

    /// - Parameter spare: the group to take in the reusable hierarchies, and whether it exists
    ///   already (then it is reset instead of made); nil to make every directory under `name`.
    private func createV1(_ name: String, _ limits: CgroupLimits, spare: (group: SpareGroup, reused: Bool)?) throws(CgroupError) -> JailCgroup {
        var created: [String] = []
        var dirFDs: [Int32] = []
        var dirFor: [String: String] = [:]
        func directoryName(under parent: String) -> String {
            if let spare, spares?.parents.contains(parent) == true { spare.group.name } else { name }
        }
        for (c, p) in v1ParentFor { dirFor[c] = p + "/" + directoryName(under: p) }
        var kept = spare?.group
        /// A control file of the new group's directory in `controller`'s hierarchy (nil when
        /// that hierarchy is not mounted, which `check` has refused if a limit needs it).
        func file(_ controller: String, _ name: String) -> CgroupFile? {
            dirFor[controller].map { JailCgroup.file($0, name, dirs: created, dirFDs: dirFDs) }
        }
        do throws(CgroupError) {
            for (p, parentFD) in zip(parentDirs, parentFDs) {
                let dirName = directoryName(under: p)
                let dir = CgroupFile(p, dirName, directoryFD: parentFD)
                if spare?.reused != true || dirName == name {
                    try CgroupFS.mkdir(dir, allowExisting: false)
                }
                created.append(dir.path)
                dirFDs.append(dir.open(openPathOnly | O_DIRECTORY))
            }
            if spare?.reused == true, let usage = file("cpuacct", "cpuacct.usage") {
                // Zero resets usage_user and usage_sys too; a new group starts there.
                try CgroupFS.write(usage, "0", what: "reset CPU accounting of a kept group")
            }
            if let m = limits.memoryBytes, let limit = file("memory", "memory.limit_in_bytes") {
                // limit first: the kernel requires memsw >= limit, and both start at "max".
                try CgroupFS.write(limit, String(m), what: "set memory limit")
                if host.v1HasMemsw, let memsw = file("memory", "memory.memsw.limit_in_bytes") {
                    // memory+swap equal to memory: no swap at all.
                    try CgroupFS.write(memsw, String(m), what: "set memory+swap limit (no swap)")
                }
                // else: check() already failed if swap is active; with no swap device there is nothing to limit.
            }
            if let p = limits.pidsMax, let max = file("pids", "pids.max") {
                try CgroupFS.write(max, String(p), what: "set pids limit")
            }
            // A kept group has the quota its last jail had; a new one none.
            let wantedQuota = limits.cpuMaxCores.map(cfsQuotaMicros(cores:))
            if wantedQuota != kept?.quotaMicros, let period = file("cpu", "cpu.cfs_period_us"), let quota = file("cpu", "cpu.cfs_quota_us") {
                if let wantedQuota {
                    try CgroupFS.write(period, String(cfsPeriodMicros), what: "set CFS period")
                    try CgroupFS.write(quota, String(wantedQuota), what: "set CFS quota")
                } else {
                    try CgroupFS.write(quota, "-1", what: "lift the CFS quota of a kept group")
                }
            }
            kept?.quotaMicros = wantedQuota
        } catch {
            for fd in dirFDs where fd >= 0 { _ = Glibc.close(fd) }
            for d in created.reversed() { _ = CgroupFS.rmdir(d) }
            throw error
        }
        return JailCgroup(
            name: name, version: .v1, dirs: created, dirFor: dirFor, v1Mounts: host.v1Mounts, cloneFD: nil, dirFDs: dirFDs,
            spare: kept.flatMap { kept in spares.map { (kept, $0) } })
    }

    private func createV2(_ name: String, _ limits: CgroupLimits) throws(CgroupError) -> JailCgroup {
        for (c, needed) in [("memory", limits.memoryBytes != nil), ("pids", limits.pidsMax != nil), ("cpu", limits.cpuMaxCores != nil)]
        where needed && !v2Enabled.contains(c) {
            throw CgroupError(.missingController, "cgroup2 controller \(c) not enabled for jail groups", path: parentDirs[0] + "/cgroup.subtree_control")
        }
        let group = CgroupFile(parentDirs[0], name, directoryFD: parentFDs[0])
        let dir = group.path
        try CgroupFS.mkdir(group, allowExisting: false)
        // The group's directory, for CLONE_INTO_CGROUP and (a duplicate) for its control files.
        let fd = group.open(openPathOnly | O_DIRECTORY)
        guard fd >= 0 else {
            let e = CgroupFS.lastErrno
            _ = CgroupFS.rmdir(dir)
            throw CgroupError(.io, "open group directory for CLONE_INTO_CGROUP", path: dir, errno: e)
        }
        let dirFD = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        do throws(CgroupError) {
            if let m = limits.memoryBytes {
                try CgroupFS.write(CgroupFile(dir, "memory.max", directoryFD: dirFD), String(m), what: "set memory limit")
                do throws(CgroupError) {
                    try CgroupFS.write(CgroupFile(dir, "memory.swap.max", directoryFD: dirFD), "0", what: "forbid swap")
                } catch where error.code == .missingController && !host.swapActive {
                    // No swap accounting (CONFIG_SWAP off or swapaccount=0) and no swap device: nothing to forbid.
                }
            }
            if let p = limits.pidsMax {
                try CgroupFS.write(CgroupFile(dir, "pids.max", directoryFD: dirFD), String(p), what: "set pids limit")
            }
            if let c = limits.cpuMaxCores {
                try CgroupFS.write(
                    CgroupFile(dir, "cpu.max", directoryFD: dirFD), "\(cfsQuotaMicros(cores: c)) \(cfsPeriodMicros)", what: "set CPU limit")
            }
        } catch {
            _ = Glibc.close(fd)
            if dirFD >= 0 { _ = Glibc.close(dirFD) }
            _ = CgroupFS.rmdir(dir)
            throw error
        }
        return JailCgroup(name: name, version: .v2, dirs: [dir], dirFor: [:], cloneFD: fd, dirFDs: [dirFD])
    }

    /// Kills every process in, and removes, every child group of the parent: a restarted daemon
    /// cleans up what a dead one left behind.
    ///
    /// - Returns: How many groups were removed.
    public func reapLeftovers() -> Int {
        var names: [String] = []
        for p in parentDirs {
            for n in CgroupFS.subdirectories(p) where !names.contains(n) { names.append(n) }
        }
        var removed = 0
        for n in names {
            var dirFor: [String: String] = [:]
            for (c, p) in v1ParentFor { dirFor[c] = p + "/" + n }
            let dirs = parentDirs.map { $0 + "/" + n }.filter(CgroupFS.exists)
            let g = JailCgroup(name: n, version: host.version, dirs: dirs, dirFor: dirFor, cloneFD: nil)
            g.kill()
            do {
                try g.remove()
                removed += 1
            } catch {
                continue  // Still busy (e.g. a task stuck in D state): the next start tries again.
            }
        }
        return removed
    }
}

/// CFS period: 100 ms, the kernel default.
let cfsPeriodMicros = 100_000

/// Quota for `cores` of CPU per period; the kernel's minimum quota is 1 ms.
func cfsQuotaMicros(cores: Double) -> Int {
    max(1000, Int((cores * Double(cfsPeriodMicros)).rounded()))
}

/// Maps a name to `[A-Za-z0-9_.-]` (others become `_`), no leading dot, at most 128 bytes.
func sanitizeCgroupName(_ name: String) throws(CgroupError) -> String {
    var out = ""
    for u in name.unicodeScalars.prefix(128) {
        switch u {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-": out.unicodeScalars.append(u)
        case ".": out.unicodeScalars.append(out.isEmpty ? "_" : u)
        default: out.unicodeScalars.append("_")
        }
    }
    guard !out.isEmpty else { throw CgroupError(.invalidName, "empty cgroup name") }
    return out
}
