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
        /// Each `Counter`'s file, opened with the group (by `Counter.rawValue`; -1 where it is
        /// not held): a path open on cgroupfs costs about 8 µs, a `pread` of a held file about 1.
        var heldCounters = [Int32](repeating: -1, count: Counter.allCases.count)

        mutating func closeHeldCounters() {
            for fd in heldCounters where fd >= 0 { _ = Glibc.close(fd) }
            heldCounters = [Int32](repeating: -1, count: Counter.allCases.count)
        }
    }

    /// The control files `stats()` reads after every jail, on the attempt's critical path.
    enum Counter: Int, CaseIterable {
        case memoryPeak, memoryEvents, memoryFailures, swapFailures
        case cpuUsage, cpuUser, cpuSystem, cpuStat
        case pidsPeak, pidsEvents, populated

        /// Its controller (v1; empty on v2) and file name, or nil where `version` has no such file.
        func file(_ version: CgroupVersion) -> (controller: String, name: String)? {
            switch (version, self) {
            case (.v1, .memoryPeak): ("memory", "memory.max_usage_in_bytes")
            case (.v1, .memoryEvents): ("memory", "memory.oom_control")
            case (.v1, .memoryFailures): ("memory", "memory.failcnt")
            case (.v1, .swapFailures): ("memory", "memory.memsw.failcnt")
            case (.v1, .cpuUsage): ("cpuacct", "cpuacct.usage")
            case (.v1, .cpuUser): ("cpuacct", "cpuacct.usage_user")
            case (.v1, .cpuSystem): ("cpuacct", "cpuacct.usage_sys")
            case (.v1, .pidsPeak): ("pids", "pids.peak")
            case (.v1, .pidsEvents): ("pids", "pids.events")
            case (.v2, .memoryPeak): ("", "memory.peak")
            case (.v2, .memoryEvents): ("", "memory.events")
            case (.v2, .cpuStat): ("", "cpu.stat")
            case (.v2, .pidsPeak): ("", "pids.peak")
            case (.v2, .pidsEvents): ("", "pids.events")
            case (.v2, .populated): ("", "cgroup.events")
            default: nil
            }
        }
    }

    /// Each `Counter`'s path (by `rawValue`), to read it by path when it is not held; nil where
    /// the group has no such file.
    private let counterPaths: [String?]

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
        let files = Counter.allCases.map { counter -> CgroupFile? in
            guard let (controller, name) = counter.file(version),
                  let dir = version == .v2 ? dirs.first : dirFor[controller] else { return nil }
            return Self.file(dir, name, dirs: dirs, dirFDs: held)
        }
        counterPaths = files.map { $0?.path }
        for (index, file) in files.enumerated() {
            // Where the open fails, the file is read by path, which says why it cannot be.
            guard let fd = file?.open(O_RDONLY), fd >= 0 else { continue }
            state.heldCounters[index] = fd
            // cgroupfs allocates a file's read buffer at its first read and keeps it: let that
            // happen now, in the pool's time, not at the end of the jail.
            withUnsafeTemporaryAllocation(byteCount: 64, alignment: 1) { _ = Glibc.pread(fd, $0.baseAddress, $0.count, 0) }
        }
        self.state = Mutex(state)
    }

    deinit {
        // A group dropped without remove() still must not leak its fds.
        state.withLock { s in
            if let fd = s.cloneFD { _ = Glibc.close(fd) }
            s.closeHeldCounters()
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

    /// `counter`'s file, parsed by `parse` straight from its bytes. A held file takes one `pread`
    /// at offset 0, which makes cgroupfs generate it afresh; a read shorter than the buffer is the
    /// whole file. Not `cgroup.procs`: v1 answers a held one from a pid list it keeps for a second
    /// after the first read, so it would still list the killed.
    private func read<T>(_ counter: Counter, _ parse: (UnsafeRawBufferPointer) -> T?) -> T? {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 1) { buffer -> T? in
            let count: Int = state.withLock { s in
                let fd = s.heldCounters[counter.rawValue]
                guard fd >= 0 else { return -1 }
                return (try? syscallRetrying { Glibc.pread(fd, buffer.baseAddress, buffer.count, 0) }) ?? -1
            }
            if count >= 0 && count < buffer.count {
                return parse(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
            // Not held, or longer than the buffer: the whole file, by path.
            guard let path = counterPaths[counter.rawValue], var text = CgroupFS.read(path) else { return nil }
            return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
        }
    }

    private func number(_ counter: Counter) -> UInt64? { read(counter, CgroupFS.number(in:)) }

    private func keyed(_ counter: Counter, _ key: String) -> UInt64? {
        read(counter) { CgroupFS.keyed(key, in: $0) }
    }

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
        if version == .v2, let populated = keyed(.populated, "populated") {
            return populated == 0
        }
        return CgroupFS.pids(in: CgroupFS.read(file(d, "cgroup.procs")) ?? "").isEmpty
    }

    /// Reads the group's counters; call after the reap for final values.
    public func stats() -> CgroupStats {
        var s = CgroupStats()
        s.memoryPeakBytes = number(.memoryPeak)
        s.pidsPeak = number(.pidsPeak).map { Int($0) }
        s.pidsLimitHits = Int(keyed(.pidsEvents, "max") ?? 0)
        switch version {
        case .v1:
            s.oomKills = Int(keyed(.memoryEvents, "oom_kill") ?? 0)
            // With memsw accounting the memory+swap counter is charged first and, set equal to
            // the memory limit, is the one that fails; a charge fails on one counter only, so add them.
            // Caveat: Linux 6.13+ ("track failcnt only for legacy cgroups") counts failcnt on
            // the memory counter only, so with memsw set this stays 0; use oomKills to classify.
            s.memoryLimitHits = Int(number(.memoryFailures) ?? 0) + Int(number(.swapFailures) ?? 0)
            s.cpuUsageNanos = number(.cpuUsage)
            s.cpuUserNanos = number(.cpuUser)
            s.cpuSystemNanos = number(.cpuSystem)
        case .v2:
            let memory = read(.memoryEvents) { (CgroupFS.keyed("oom_kill", in: $0), CgroupFS.keyed("max", in: $0)) }
            s.oomKills = Int(memory?.0 ?? 0)
            s.memoryLimitHits = Int(memory?.1 ?? 0)
            let cpu = read(.cpuStat) {
                (CgroupFS.keyed("usage_usec", in: $0), CgroupFS.keyed("user_usec", in: $0), CgroupFS.keyed("system_usec", in: $0))
            }
            s.cpuUsageNanos = cpu?.0.map { $0 &* 1000 }
            s.cpuUserNanos = cpu?.1.map { $0 &* 1000 }
            s.cpuSystemNanos = cpu?.2.map { $0 &* 1000 }
        }
        return s
    }

    /// The group's CPU time so far in nanoseconds (`stats().cpuUsageNanos`, one file read).
    public func cpuUsageNanos() -> UInt64? {
        switch version {
        case .v1: number(.cpuUsage)
        case .v2: keyed(.cpuStat, "usage_usec").map { $0 &* 1000 }
        }
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
            s.closeHeldCounters()
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
