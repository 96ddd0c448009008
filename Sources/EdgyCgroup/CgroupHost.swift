import Glibc

/// The host's cgroup layout, found once at daemon start.
///
/// Detection reads `/proc/self/mountinfo`: a cgroup2 mount whose root offers controllers wins
/// (pure v2 hosts, or hybrid hosts whose controllers live on v2); otherwise the v1 controller
/// hierarchies are used; a cgroup2 mount with no controllers is the last resort (core files only,
/// so any requested limit fails `check`).
public final class CgroupHost: Sendable {
    public let version: CgroupVersion
    /// v1: mount point per controller we use (`memory`, `pids`, `cpu`, `cpuacct`, `freezer`).
    /// Co-mounted controllers (e.g. `cpu,cpuacct`) share one mount point.
    let v1Mounts: [String: String]
    /// v2: the cgroup2 mount point.
    let v2Root: String
    /// v2: the group Edgy's groups go under: this process's own group (a systemd unit with
    /// `Delegate=yes`, a container's cgroup namespace) or the root. When this process has already
    /// moved into its `supervisorLeaf`, the group above that leaf.
    public let v2Base: String
    /// v2: controllers available in `v2Base` (its `cgroup.controllers`): what was delegated to us.
    let v2Controllers: Set<String>

    /// The leaf group a v2 supervisor moves itself into, so that its own group may enable
    /// controllers for its jails (the "no internal processes" rule).
    public static let supervisorLeaf = "supervisor"
    /// v1: `memory.memsw.*` exists (swap accounting on), so "no swap" can be enforced.
    let v1HasMemsw: Bool
    /// Some swap device is active (`/proc/swaps` has entries).
    let swapActive: Bool

    /// The v1 controllers Edgy places a jail in; `cpuacct` for CPU accounting, `freezer` for the kill.
    static let v1Controllers = ["memory", "pids", "cpu", "cpuacct", "freezer"]

    private init(version: CgroupVersion, v1Mounts: [String: String], v2Root: String) {
        self.version = version
        self.v1Mounts = v1Mounts
        self.v2Root = v2Root
        v2Base = v2Root.isEmpty ? "" : Self.ownGroup(under: v2Root)
        v2Controllers = v2Root.isEmpty ? [] : Self.controllers(at: v2Base)
        if let mem = v1Mounts["memory"] {
            v1HasMemsw = CgroupFS.exists(mem + "/memory.memsw.limit_in_bytes")
        } else {
            v1HasMemsw = false
        }
        let swaps = CgroupFS.read("/proc/swaps") ?? ""
        swapActive = swaps.split(separator: "\n").count > 1  // first line is the header
    }

    /// Finds the host's cgroup interface.
    ///
    /// - Throws: `CgroupError` `.notMounted` if neither cgroup2 nor any v1 controller we use is mounted.
    public static func detect() throws(CgroupError) -> CgroupHost {
        guard let text = CgroupFS.read("/proc/self/mountinfo") else {
            throw CgroupError(.notMounted, "cannot read mount table", path: "/proc/self/mountinfo", errno: CgroupFS.lastErrno)
        }
        let mounts = parseMountinfo(text)
        var v1: [String: String] = [:]
        var v2: String?
        for m in mounts {
            switch m.fstype {
            case "cgroup2":
                // Prefer the conventional mount point if there are several.
                if v2 == nil || m.mountPoint == "/sys/fs/cgroup" { v2 = m.mountPoint }
            case "cgroup":
                for opt in m.superOptions.split(separator: ",") where v1Controllers.contains(String(opt)) {
                    if v1[String(opt)] == nil { v1[String(opt)] = m.mountPoint }
                }
            default:
                continue
            }
        }
        let v2Controllers = v2.map(controllers(at:)) ?? []
        let wanted: Set<String> = ["memory", "pids", "cpu"]
        if let v2, !v2Controllers.isDisjoint(with: wanted) {
            return CgroupHost(version: .v2, v1Mounts: [:], v2Root: v2)
        }
        if !v1.isEmpty {
            return CgroupHost(version: .v1, v1Mounts: v1, v2Root: "")
        }
        if let v2 {
            return CgroupHost(version: .v2, v1Mounts: [:], v2Root: v2)
        }
        throw CgroupError(.notMounted, "no cgroup2 mount and no v1 memory/pids/cpu/cpuacct/freezer hierarchy", path: "/proc/self/mountinfo")
    }

    /// Uses the cgroup2 hierarchy mounted at `mountPoint`, whatever `detect()` would pick.
    ///
    /// For hybrid hosts where an operator wants the unified hierarchy (e.g. controllers moved to
    /// v2 with `cgroup_no_v1=`), or a cgroup2 mount that is not in the usual place.
    /// - Throws: `CgroupError` `.notMounted` if `mountPoint` is not a cgroup2 filesystem.
    public static func unified(mountPoint: String) throws(CgroupError) -> CgroupHost {
        let table = CgroupFS.read("/proc/self/mountinfo") ?? ""
        guard parseMountinfo(table).contains(where: { $0.mountPoint == mountPoint && $0.fstype == "cgroup2" }) else {
            throw CgroupError(.notMounted, "not a cgroup2 mount point", path: mountPoint)
        }
        return CgroupHost(version: .v2, v1Mounts: [:], v2Root: mountPoint)
    }

    /// Fails if the host cannot enforce every limit in `limits`, or cannot kill a group.
    ///
    /// - Throws: `CgroupError` `.missingController` naming the controller or file, or `.invalidLimit`.
    public func check(requiring limits: CgroupLimits) throws(CgroupError) {
        try limits.validate()
        switch version {
        case .v1:
            // The freezer is how a v1 group is killed as a whole (stopped and forking tasks included).
            try requireV1("freezer", for: "killing a group")
            if limits.memoryBytes != nil {
                let mem = try requireV1("memory", for: "a memory limit")
                if !v1HasMemsw && swapActive {
                    throw CgroupError(
                        .missingController,
                        "swap is active but swap accounting is off (boot with swapaccount=1), so \"no swap\" cannot be enforced",
                        path: mem + "/memory.memsw.limit_in_bytes")
                }
            }
            if limits.pidsMax != nil { try requireV1("pids", for: "a pids limit") }
            if limits.cpuMaxCores != nil {
                let cpu = try requireV1("cpu", for: "a CPU limit")
                if !CgroupFS.exists(cpu + "/cpu.cfs_quota_us") {
                    throw CgroupError(.missingController, "CFS bandwidth control missing (CONFIG_CFS_BANDWIDTH)", path: cpu + "/cpu.cfs_quota_us")
                }
            }
        case .v2:
            if limits.memoryBytes != nil { try requireV2("memory", for: "a memory limit") }
            if limits.pidsMax != nil { try requireV2("pids", for: "a pids limit") }
            if limits.cpuMaxCores != nil { try requireV2("cpu", for: "a CPU limit") }
        }
    }

    @discardableResult
    private func requireV1(_ controller: String, for purpose: String) throws(CgroupError) -> String {
        guard let m = v1Mounts[controller] else {
            throw CgroupError(.missingController, "cgroup v1 controller \(controller) not mounted (needed for \(purpose))", path: "/sys/fs/cgroup/\(controller)")
        }
        return m
    }

    private func requireV2(_ controller: String, for purpose: String) throws(CgroupError) {
        guard v2Controllers.contains(controller) else {
            let hint = v2Base == v2Root
                ? "the kernel does not offer it"
                : "it is not delegated to this process's group; under systemd, run edgyd from a unit with Delegate=yes (see scripts/edgyd.service), or enable it in the parent group's cgroup.subtree_control"
            throw CgroupError(
                .missingController, "cgroup2 controller \(controller) not available (needed for \(purpose)): \(hint)",
                path: v2Base + "/cgroup.controllers")
        }
    }

    /// This process's cgroup2 group (`0::/path` in `/proc/self/cgroup`) under `root`, or the group
    /// above it when it is our `supervisorLeaf` already.
    static func ownGroup(under root: String) -> String {
        let lines = (CgroupFS.read("/proc/self/cgroup") ?? "").split(separator: "\n")
        guard let line = lines.first(where: { $0.hasPrefix("0::") }) else { return root }
        var path = String(line.dropFirst(3))
        if path.hasSuffix("/" + supervisorLeaf) { path.removeLast(supervisorLeaf.count + 1) }
        // A group deleted under us reads " (deleted)"; the root reads "/".
        guard path.hasPrefix("/"), !path.hasSuffix(" (deleted)"), path != "/", CgroupFS.exists(root + path) else { return root }
        return root + path
    }

    static func controllers(at dir: String) -> Set<String> {
        guard let text = CgroupFS.read(dir + "/cgroup.controllers") else { return [] }
        return Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    struct Mount: Equatable {
        var mountPoint: String
        var fstype: String
        var superOptions: String
    }

    /// Parses `/proc/self/mountinfo` (proc(5)): `id parent maj:min root mountpoint opts [optional…] - fstype source superopts`.
    static func parseMountinfo(_ text: String) -> [Mount] {
        var out: [Mount] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 10, let dash = f.firstIndex(of: "-"), dash >= 6, dash + 3 < f.count else { continue }
            let fstype = String(f[dash + 1])
            let superOpts = String(f[dash + 3])
            out.append(Mount(mountPoint: unescape(f[4]), fstype: fstype, superOptions: superOpts))
        }
        return out
    }

    /// Undoes the kernel's octal escapes (`\040` for space, …) in mountinfo paths.
    static func unescape(_ s: Substring) -> String {
        guard s.contains("\\") else { return String(s) }
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 3 < u.count,
               let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(v)
                i += 4
            } else {
                bytes.append(u[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
