import EdgySystem
import Glibc
import Synchronization
import SystemPackage

/// The cgroup of one jail attempt: attach, list, kill, read stats, remove.
///
/// Lifecycle: `create` → `attach` (or `CLONE_INTO_CGROUP` with `cloneIntoFD` on v2) → … →
/// `kill` on timeout/cancel/shutdown → reap → `stats` → `remove`.
public final class JailCgroup: Sendable {
    /// The sanitized group name (the directory name under the parent).
    public let name: String
    let version: CgroupVersion
    /// The group's directory in each hierarchy (v1) or its single directory (v2); freezer first on v1.
    let dirs: [String]
    /// v1: controller → the group's directory in that controller's hierarchy.
    let dirFor: [String: String]
    /// v1: controller → its hierarchy's mount point (to find the calling thread's own group).
    let v1Mounts: [String: String]
    /// `dirs` held open (`O_PATH`), so that control files are opened relative to them; -1 where
    /// an open failed (that directory's files are then opened by path).
    private let dirFDs: [Int32]
    /// v1: the kept group this jail's group uses in the reusable hierarchies, and where it goes
    /// back at `remove` (`SpareGroups`).
    private let spare: (group: SpareGroup, home: SpareGroups)?
    private let state: Mutex<State>

    private struct State {
        var cloneFD: Int32?
        var removed = false
        /// Whether `kill` ran: a group that had to be killed is removed whole, never kept.
        var killed = false
        /// The control files read after the jail ends (`stats`), by path, opened
        /// with the group: a path open on cgroupfs costs about 8 µs, a `pread` of a held file
        /// under 1 µs, and the end of an attempt reads up to 13 of them on its critical path.
        var heldFiles: [String: Int32] = [:]

        mutating func closeHeldFiles() {
            for fd in heldFiles.values { _ = Glibc.close(fd) }
            heldFiles = [:]
        }
    }

    /// - Parameters:
    ///   - dirFDs: `dirs` opened with `O_PATH | O_DIRECTORY`, which the group now owns; nil to
    ///     open them here.
    ///   - spare: v1: the kept group among `dirs`, handed back to its `SpareGroups` at `remove`.
    init(
        name: String, version: CgroupVersion, dirs: [String], dirFor: [String: String], v1Mounts: [String: String] = [:],
        cloneFD: Int32?, dirFDs: [Int32]? = nil, spare: (group: SpareGroup, home: SpareGroups)? = nil
    ) {
        self.spare = spare
        self.v1Mounts = v1Mounts
        self.name = name
        self.version = version
        self.dirs = dirs
        self.dirFor = dirFor
        let held = dirFDs ?? dirs.map(Self.openDirectory)
        self.dirFDs = held
        var state = State(cloneFD: cloneFD)
        for file in Self.filesReadAtTheEnd(version: version, dirs: dirs, dirFor: dirFor, dirFDs: held) {
            let fd = file.open(O_RDONLY)
            if fd >= 0 { state.heldFiles[file.path] = fd }  // else read by path, which says why it cannot be
        }
        self.state = Mutex(state)
    }

    deinit {
        // A group dropped without remove() still must not leak its fds.
        state.withLock { s in
            if let fd = s.cloneFD { _ = Glibc.close(fd) }
            s.closeHeldFiles()
        }
        for fd in dirFDs where fd >= 0 { _ = Glibc.close(fd) }
    }

    /// `dir` opened `O_PATH | O_DIRECTORY`, or -1.
    static func openDirectory(_ dir: String) -> Int32 {
        CgroupFS.open(dir, openPathOnly | O_DIRECTORY)
    }

    /// The control file `name` of the group's directory `dir` (one of `dirs`).
    private func file(_ dir: String, _ name: String) -> CgroupFile {
        Self.file(dir, name, dirs: dirs, dirFDs: dirFDs)
    }

    /// The control file `name` of `dir`, through its descriptor in `dirFDs` (parallel to `dirs`)
    /// when it is held open, else by path.
    static func file(_ dir: String, _ name: String, dirs: [String], dirFDs: [Int32]) -> CgroupFile {
        CgroupFile(dir, name, directoryFD: dirs.firstIndex(of: dir).map { dirFDs[$0] } ?? -1)
    }

    /// What `stats()` reads. Not `cgroup.procs`: v1 answers a held one from a pid list it
    /// keeps for a second after the first read, so it would still list the killed.
    private static func filesReadAtTheEnd(
        version: CgroupVersion, dirs: [String], dirFor: [String: String], dirFDs: [Int32]
    ) -> [CgroupFile] {
        func files(_ dir: String, _ names: [String]) -> [CgroupFile] {
            names.map { file(dir, $0, dirs: dirs, dirFDs: dirFDs) }
        }
        var all: [CgroupFile] = []
        switch version {
        case .v1:
            if let m = dirFor["memory"] {
                all += files(m, ["memory.max_usage_in_bytes", "memory.oom_control", "memory.failcnt", "memory.memsw.failcnt"])
            }
            if let c = dirFor["cpuacct"] { all += files(c, ["cpuacct.usage", "cpuacct.usage_user", "cpuacct.usage_sys"]) }
            if let p = dirFor["pids"] { all += files(p, ["pids.peak", "pids.events"]) }
        case .v2:
            if let d = dirs.first {
                all += files(d, ["cgroup.events", "memory.peak", "memory.events", "cpu.stat", "pids.peak", "pids.events"])
            }
        }
        return all
    }

    /// The control file at `path`, from its held descriptor when there is one (`pread` at 0
    /// makes cgroupfs generate it afresh).
    private func read(_ path: String) -> String? {
        let held: String?? = state.withLock { s in s.heldFiles[path].map { CgroupFS.read(descriptor: $0) } }
        return held ?? CgroupFS.read(path)
    }

    private func number(_ path: String) -> UInt64? { read(path).flatMap(CgroupFS.number(in:)) }

    private func keyed(_ text: String?, _ key: String) -> UInt64? { text.flatMap { CgroupFS.keyed(key, in: $0) } }

    /// v2 only: an `O_PATH | O_DIRECTORY | O_CLOEXEC` fd on the group directory, for `clone3`
    /// `CLONE_INTO_CGROUP` (the child starts inside the group: no unlimited window). `nil` on v1
    /// and after `remove()`.
    public var cloneIntoFD: Int32? {
        state.withLock { $0.cloneFD }
    }

    /// v1: for a task whose `/proc/PID/cgroup` reads `table`, the group's directory in each
    /// hierarchy and the task's own group there, to move it in and back (`withCallingThreadInside`,
    /// and the fork server, which does the same itself). nil on v2 or for a hierarchy it is not in.
    public func v1Moves(from table: String) -> [(group: String, home: String)]? {
        v1Moves(fromGroups: Self.v1Groups(from: table))
    }

    /// A `/proc/PID/cgroup` table as controller → the task's group path in that hierarchy.
    public static func v1Groups(from table: String) -> [String: String] {
        var current: [String: String] = [:]
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            for controller in fields[1].split(separator: ",") { current[String(controller)] = String(fields[2]) }
        }
        return current
    }

    /// `v1Moves(from:)` for a table parsed by `v1Groups(from:)`.
    public func v1Moves(fromGroups current: [String: String]) -> [(group: String, home: String)]? {
        guard version == .v1 else { return nil }
        var moves: [(group: String, home: String)] = []
        for dir in dirs {
            guard let controller = dirFor.first(where: { $0.value == dir })?.key, let mount = v1Mounts[controller],
                  let path = current[controller] else { return nil }
            moves.append((dir, path == "/" ? mount : mount + path))
        }
        return moves
    }

    /// v1: runs `body` (a clone) with the calling thread inside the group in every hierarchy, then
    /// moves the thread back where it was, so that a child cloned in `body` starts inside the group.
    ///
    /// Writing `0` to a hierarchy's `tasks` moves only the caller, and the kernel skips the global
    /// threadgroup lock that moving another process through `cgroup.procs` takes: 0.1 ms instead
    /// of an RCU grace period (7–15 ms on this host when moves are spaced out). Returns nil, with
    /// `body` not run and the thread where it was, when that is not possible (v2, an unknown
    /// hierarchy, a failed move): then `attach(pid:)` the child instead.
    ///
    /// - Important: While inside, the thread counts against the group's pids limit (keep it at
    ///   2 or more) and is charged for what it allocates.
    public func withCallingThreadInside<T>(_ body: () -> T) -> T? {
        guard let table = CgroupFS.read("/proc/thread-self/cgroup"), let moves = v1Moves(from: table) else { return nil }
        let homes = moves.map(\.home)
        var entered = 0
        defer {
            // Back home, whatever happened. A thread left inside would be killed with the jail
            // (and with it this process), so failing that is not survivable.
            for home in homes.prefix(entered) {
                do {
                    try CgroupFS.write(home + "/tasks", "0", what: "leave jail group")
                } catch {
                    fatalError("cannot move the spawning thread out of jail group \(name): \(error)")
                }
            }
        }
        for move in moves {
            guard (try? CgroupFS.write(move.group + "/tasks", "0", what: "enter jail group")) != nil else { return nil }
            entered += 1
        }
        return body()
    }

    /// Moves `pid` (its whole thread group) into the group.
    ///
    /// v1 writes the pid to `cgroup.procs` in every hierarchy (freezer first); v2 writes it once.
    /// - Important: On v1 a move can block for milliseconds (cgroup_threadgroup_rwsem / RCU
    ///   sync) when moves are spaced out; keep it off the start-up hot path where possible.
    /// - Throws: `CgroupError` with the failing `cgroup.procs` path (`ESRCH` if `pid` is gone).
    public func attach(pid: pid_t) throws(CgroupError) {
        let s = String(pid)
        for d in dirs {
            try CgroupFS.write(file(d, "cgroup.procs"), s, what: "attach pid \(pid)", missingIsIO: true)
        }
    }

    /// The processes (thread-group ids) in the group; on v1 the union over its hierarchies.
    public func processes() -> [pid_t] {
        if dirs.count == 1 { return CgroupFS.pids(in: CgroupFS.read(file(dirs[0], "cgroup.procs")) ?? "") }
        var all = Set<pid_t>()
        for d in dirs { all.formUnion(CgroupFS.pids(in: CgroupFS.read(file(d, "cgroup.procs")) ?? "")) }
        return all.sorted()
    }

    /// Kills every process in the group, including stopped and double-forked ones.
    ///
    /// v2 writes `1` to `cgroup.kill` (the kernel SIGKILLs every task, forks included) and returns;
    /// the tasks exit asynchronously. v1 freezes the group (`freezer.state` FROZEN, so nothing can
    /// fork while we read the list), SIGKILLs every pid, thaws (the kills land on thaw; stopped
    /// tasks die too), and repeats until the group is empty or about 2 s have passed.
    public func kill() {
        state.withLock { $0.killed = true }
        switch version {
        case .v2:
            guard let d = dirs.first else { return }
            if (try? CgroupFS.write(file(d, "cgroup.kill"), "1", what: "kill group")) == nil {
                // Only if the group is already gone or the write failed oddly: fall back to signals.
                signalAll()
            }
        case .v1:
            killV1()
        }
    }

    private func signalAll() {
        // Never ourselves: a spawning thread is inside for an instant (`withCallingThreadInside`).
        let me = getpid()
        for p in processes() where p != me { _ = Glibc.kill(p, SIGKILL) }
    }

    private func killV1() {
        let deadline = CgroupFS.nowNanos() + 2_000_000_000
        let freezer = dirFor["freezer"].map { file($0, "freezer.state") }
        repeat {
            if let f = freezer {
                _ = try? CgroupFS.write(f, "FROZEN", what: "freeze group")
                // FREEZING until every task is caught; a task in uninterruptible sleep can delay it,
                // so give up waiting after 200 ms and kill anyway.
                let freezeDeadline = CgroupFS.nowNanos() + 200_000_000
                while CgroupFS.nowNanos() < freezeDeadline {
                    let st = CgroupFS.read(f) ?? ""
                    if st.hasPrefix("FROZEN") || st.isEmpty { break }
                    CgroupFS.sleep(milliseconds: 1)
                }
            }
            signalAll()
            if let f = freezer {
                _ = try? CgroupFS.write(f, "THAWED", what: "thaw group")
            }
            if waitEmpty(milliseconds: 100) { return }
        } while CgroupFS.nowNanos() < deadline
    }

    /// Polls until the group has no processes; true if it emptied in time.
    func waitEmpty(milliseconds: Int) -> Bool {
        let deadline = CgroupFS.nowNanos() + UInt64(milliseconds) * 1_000_000
        var pause = 0
        while true {
            if isEmpty() { return true }
            if CgroupFS.nowNanos() >= deadline { return false }
            if pause == 0 { sched_yield() } else { CgroupFS.sleep(milliseconds: pause) }
            pause = min(pause + 1, 10)
        }
    }

    /// True when no process is left in the group: one read, not one per hierarchy. On v1 every
    /// process of a jail is in the group of each hierarchy (its first process was placed in all
    /// of them before it ran, children inherit the memberships, and nothing in a jail can move
    /// itself: it has no cgroup filesystem and no capability outside its user namespace), and
    /// an exit leaves all hierarchies at once, so the first hierarchy's `cgroup.procs` says it.
    public func isEmpty() -> Bool {
        guard let d = dirs.first else { return true }
        if version == .v2, let populated = keyed(read(d + "/cgroup.events"), "populated") {
            return populated == 0
        }
        return CgroupFS.pids(in: CgroupFS.read(file(d, "cgroup.procs")) ?? "").isEmpty
    }

    /// Reads the group's counters; call after the reap for final values.
    public func stats() -> CgroupStats {
        var s = CgroupStats()
        switch version {
        case .v1:
            if let m = dirFor["memory"] {
                s.memoryPeakBytes = number(m + "/memory.max_usage_in_bytes")
                s.oomKills = Int(keyed(read(m + "/memory.oom_control"), "oom_kill") ?? 0)
                // With memsw accounting the memory+swap counter is charged first and, set equal to
                // the memory limit, is the one that fails; a charge fails on one counter only, so add them.
                // Caveat: Linux 6.13+ ("track failcnt only for legacy cgroups") counts failcnt on
                // the memory counter only, so with memsw set this stays 0; use oomKills to classify.
                s.memoryLimitHits = Int(number(m + "/memory.failcnt") ?? 0) + Int(number(m + "/memory.memsw.failcnt") ?? 0)
            }
            if let c = dirFor["cpuacct"] {
                s.cpuUsageNanos = number(c + "/cpuacct.usage")
                s.cpuUserNanos = number(c + "/cpuacct.usage_user")
                s.cpuSystemNanos = number(c + "/cpuacct.usage_sys")
            }
            if let p = dirFor["pids"] {
                s.pidsPeak = number(p + "/pids.peak").map { Int($0) }
                s.pidsLimitHits = Int(keyed(read(p + "/pids.events"), "max") ?? 0)
            }
        case .v2:
            guard let d = dirs.first else { return s }
            let memoryEvents = read(d + "/memory.events")
            let cpu = read(d + "/cpu.stat")
            s.memoryPeakBytes = number(d + "/memory.peak")
            s.oomKills = Int(keyed(memoryEvents, "oom_kill") ?? 0)
            s.memoryLimitHits = Int(keyed(memoryEvents, "max") ?? 0)
            s.cpuUsageNanos = keyed(cpu, "usage_usec").map { $0 &* 1000 }
            s.cpuUserNanos = keyed(cpu, "user_usec").map { $0 &* 1000 }
            s.cpuSystemNanos = keyed(cpu, "system_usec").map { $0 &* 1000 }
            s.pidsPeak = number(d + "/pids.peak").map { Int($0) }
            s.pidsLimitHits = Int(keyed(read(d + "/pids.events"), "max") ?? 0)
        }
        return s
    }

    /// Removes the group after the reap, then closes `cloneIntoFD`. Idempotent.
    ///
    /// Kills what is left in the group, only if anything is (`isEmpty()`, one read; the v1
    /// freeze/kill/thaw costs several writes), and waits for it to empty. Then `rmdir`s each
    /// directory, retrying `EBUSY` for a short while: on v1 the last task's exit can lag the reap.
    /// A kept group (v1, `CgroupManager`'s `spareGroups`) goes back to the manager instead,
    /// unless the group had to be killed.
    /// - Throws: `CgroupError` `.busy` if processes remain or a directory cannot be removed.
    public func remove() throws(CgroupError) {
        if state.withLock({ $0.removed }) { return }
        if !isEmpty() {
            kill()
            if !waitEmpty(milliseconds: 1000) {
                throw CgroupError(.busy, "group still has processes \(processes()) after kill", path: dirs.first)
            }
        }
        // A kept group goes back only from a jail that ended by itself: one that had to be
        // killed may have left the freezer mid-way.
        let keep = state.withLock { s in
            s.closeHeldFiles()
            return s.killed ? nil : spare
        }
        let kept = keep.map { Set($0.home.directories(of: $0.group)) } ?? []
        do throws(CgroupError) {
            for d in dirs.reversed() where !kept.contains(d) {
                try removeTree(d, listing: file(d, "."))
            }
        } catch {
            if let keep { keep.home.remove(keep.group) }
            throw error
        }
        if let keep { keep.home.give(keep.group) }
        state.withLock { s in
            if let fd = s.cloneFD { _ = Glibc.close(fd) }
            s.cloneFD = nil
            s.removed = true
        }
    }

    /// `rmdir` of `dir`, and of its sub-groups first if it has any (a workload given a delegated
    /// subtree may create some). Almost no group has one, so the directory is listed only once
    /// the kernel refuses the `rmdir` (`EBUSY`: sub-groups, or on v1 an exit still lagging).
    private func removeTree(_ dir: String, listing: CgroupFile) throws(CgroupError) {
        var attempt = 0
        while let e = CgroupFS.rmdir(dir) {
            attempt += 1
            guard e == .resourceBusy, attempt < 100 else {
                throw CgroupError(e == .resourceBusy ? .busy : .io, "remove cgroup directory", path: dir, errno: e)
            }
            let subgroups = CgroupFS.subdirectories(listing)
            for sub in subgroups {
                let path = dir + "/" + sub
                try removeTree(path, listing: CgroupFile(path: path))
            }
            if subgroups.isEmpty { CgroupFS.sleep(milliseconds: 2) }
        }
    }
}
