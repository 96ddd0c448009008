import CEdgyJail
import EdgyCgroup
import EdgySystem
import Glibc
import Synchronization
import SystemPackage

/// One parked jail in the pool's lists (an array holds only copyable values): whoever takes it
/// owns it, and it is taken at most once.
final class ParkedJailSlot: Sendable {
    private let jail: Mutex<ParkedJail?>

    init(_ jail: consuming ParkedJail) {
        self.jail = Mutex(Optional(jail))
    }

    func take() -> ParkedJail? {
        jail.withLock { $0.take() }
    }

    /// Kills and reaps the jail if nobody has taken it.
    func abort() {
        if let jail = take() { jail.abort() }
    }
}

/// Jails parked ahead of demand, a few per shape, and a janitor for finished jails' cgroups, both
/// on one long-lived thread so that the costs of cgroup v1 (a `cgroup.procs` write or an `rmdir`
/// blocks ~6–10 ms for an RCU grace period when they are spaced out) stay off the path from
/// request to exec.
///
/// The thread is also the parent of every parked jail it cloned in process: they die with it
/// (PR_SET_PDEATHSIG), and it ends only in `shutdown()`, after it has killed and reaped every
/// parked jail and removed their cgroups. (Jails from the fork server have its keeper thread as
/// their parent, which lives as long as the process.) A dead process closes their gates, which
/// makes them exit too.
final class JailPool: Sendable {
    let host: JailHostConfiguration
    let cgroups: CgroupManager?
    let network: EgressAvailability?
    let forkServer: ForkServer?
    /// Jails kept parked per shape.
    let size: Int
    /// Shapes kept warm at most; a new one evicts the least recently used (its parked jails are
    /// torn down), so a stream of distinct shapes cannot grow the pool.
    static let maxShapes = 8
    private let state = Mutex(State())

    private struct State {
        var parked: [JailShape: [ParkedJailSlot]] = [:]
        /// Shapes to keep filled, least recently used first.
        var shapes: [JailShape] = []
        /// Parked jails of evicted shapes, for the pool thread to kill and reap.
        var evicted: [ParkedJailSlot] = []
        /// Shapes whose last spawn failed: not refilled until used again (no hot loop).
        var failing: Set<JailShape> = []
        /// Finished jails (mount namespace, cgroup), to release off the request path.
        var doomed: [FinishedJail] = []
        var thread: pthread_t?
        /// Wakes the pool thread; exists while the thread does. Written under the lock only, so
        /// that `shutdown()` can close it without racing a late writer.
        var wakeFD: Int32 = -1
        var stopping = false
        /// The pool thread found nothing to do and sleeps (no clone, attach or rmdir under way).
        var idle = false

        mutating func wake() {
            idle = false
            if wakeFD >= 0 { signalEventFD(wakeFD) }
        }

        /// Marks `shape` most recently used; false when it is not kept warm.
        mutating func touch(_ shape: JailShape) -> Bool {
            guard let index = shapes.firstIndex(of: shape) else { return false }
            if index != shapes.count - 1 { shapes.append(shapes.remove(at: index)) }
            return true
        }

        /// Adds `shape` as most recently used, evicting the least recently used one when full.
        mutating func admit(_ shape: JailShape, limit: Int) {
            if touch(shape) { return }
            while shapes.count >= limit, !shapes.isEmpty {
                let old = shapes.removeFirst()
                failing.remove(old)
                evicted += parked.removeValue(forKey: old) ?? []
            }
            shapes.append(shape)
        }
    }

    init(
        host: JailHostConfiguration, cgroups: CgroupManager?, network: EgressAvailability?, forkServer: ForkServer?,
        size: Int
    ) {
        self.host = host
        self.forkServer = forkServer
        self.cgroups = cgroups
        self.network = network
        self.size = size
    }

    deinit {
        shutdown()
    }

    /// A parked jail of `shape`, or nil (none ready, or shutting down).
    func take(_ shape: JailShape) -> ParkedJail? {
        let slot = state.withLock { s -> ParkedJailSlot? in
            guard !s.stopping, s.touch(shape), var list = s.parked[shape], !list.isEmpty else { return nil }
            let slot = list.removeFirst()
            s.parked[shape] = list
            return slot
        }
        return slot?.take()
    }

    /// Asks the pool thread to top up `shape`: called when an attempt has finished, so the clone
    /// and cgroup attach do not compete with the attempt's own start and exit.
    func refill(_ shape: JailShape) {
        let start = state.withLock { s -> Bool in
            if s.stopping { return false }
            s.failing.remove(shape)
            s.admit(shape, limit: Self.maxShapes)
            s.wake()
            return s.thread == nil
        }
        if start { startThread() }
    }

    /// Stops keeping warm every shape that binds `source`, and tears down its parked jails: the
    /// directory is going away (an evicted dependency layer), and a parked jail would keep it bound.
    func forget(mounting source: String) {
        state.withLock { s in
            let gone = s.shapes.filter { $0.extraMountSources.contains(source) }
            guard !gone.isEmpty else { return }
            s.shapes.removeAll { $0.extraMountSources.contains(source) }
            for shape in gone {
                s.failing.remove(shape)
                s.evicted += s.parked.removeValue(forKey: shape) ?? []
            }
            s.wake()
        }
    }

    /// Hands a finished jail's mount namespace and cgroup to the pool thread for release (its
    /// processes are already dead: the caller checked). Releases them here when the pool is stopping.
    func retire(_ jail: FinishedJail) {
        let queued = state.withLock { s -> Bool in
            guard !s.stopping, s.thread != nil else { return false }
            s.doomed.append(jail)
            s.wake()
            return true
        }
        if !queued { ParkedJail.retire(jail) }
    }

    /// How many jails are parked now, per shape (for tests and diagnostics).
    var parkedCount: Int {
        state.withLock { s in s.parked.values.reduce(0) { $0 + $1.count } }
    }

    /// The shapes kept warm now, least recently used first (for tests and diagnostics).
    var warmShapes: [JailShape] {
        state.withLock { s in s.shapes }
    }

    /// True when the pool thread has nothing left to do: every shape topped up (or failing), every
    /// finished cgroup removed. Then the pool puts no load on the host (no clone, no cgroup write).
    var isSettled: Bool {
        state.withLock { s in s.idle || s.thread == nil }
    }

    /// Stops refilling, joins the pool thread, kills and reaps every parked jail and removes every
    /// cgroup it still owned. Idempotent; blocks for at most one refill in progress.
    func shutdown() {
        let thread = state.withLock { s -> pthread_t? in
            s.stopping = true
            s.wake()
            defer { s.thread = nil }
            return s.thread
        }
        if let thread { pthread_join(thread, nil) }
        state.withLock { s in
            if s.wakeFD >= 0 { closeDescriptor(s.wakeFD) }
            s.wakeFD = -1
        }
        drain()
    }

    private func drain() {
        let (parked, doomed) = state.withLock { s -> ([ParkedJailSlot], [FinishedJail]) in
            let all = s.parked.values.flatMap { $0 } + s.evicted
            s.parked = [:]
            s.evicted = []
            defer { s.doomed = [] }
            return (all, s.doomed)
        }
        for slot in parked { slot.abort() }
        for jail in doomed { ParkedJail.retire(jail) }
    }

    private func startThread() {
        guard let fd = try? makeEventFD() else { return }
        let ready = state.withLock { s -> Bool in
            if s.stopping || s.wakeFD >= 0 { return false }
            s.wakeFD = fd
            return true
        }
        guard ready else {
            closeDescriptor(fd)
            return
        }
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let pool = Unmanaged<JailPool>.fromOpaque(raw!).takeRetainedValue()
            pool.loop()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            state.withLock { s in
                closeDescriptor(s.wakeFD)
                s.wakeFD = -1
            }
            return
        }
        let stillWanted = state.withLock { s -> Bool in
            if s.stopping { return false }
            s.thread = thread
            return true
        }
        if !stillWanted {
            // Lost a race with shutdown, which found no thread to join: the loop sees `stopping`.
            pthread_join(thread, nil)
            state.withLock { s in
                if s.wakeFD >= 0 { closeDescriptor(s.wakeFD) }
                s.wakeFD = -1
            }
            drain()
        }
    }

    /// The pool thread: remove doomed cgroups, then top up one jail at a time, then sleep.
    ///
    /// - Important: It holds the pool strongly only while it runs; `shutdown()` (from the
    ///   supervisor's `deinit` or by hand) ends it.
    private func loop() {
        // Spawning ahead of demand must not take a core from a request: this thread and the jails
        // it clones run in the background. Under SCHED_IDLE a request's thread that wakes takes
        // the core at once; at nice 19 alone it waited for the running slice to end. A miss is
        // cloned on demand at the request's priority.
        _ = edgy_enter_background()
        while true {
            enum Work { case stop, evict([ParkedJailSlot]), remove([FinishedJail]), spawn(JailShape), idle }
            let work = state.withLock { s -> Work in
                if s.stopping { return .stop }
                if !s.evicted.isEmpty {
                    defer { s.evicted = [] }
                    return .evict(s.evicted)
                }
                if !s.doomed.isEmpty {
                    defer { s.doomed = [] }
                    return .remove(s.doomed)
                }
                for shape in s.shapes where !s.failing.contains(shape) && (s.parked[shape]?.count ?? 0) < size {
                    return .spawn(shape)
                }
                s.idle = true
                return .idle
            }
            switch work {
            case .stop:
                return
            case .evict(let jails):
                for slot in jails { slot.abort() }
            case .remove(let jails):
                for jail in jails { ParkedJail.retire(jail) }
            case .spawn(let shape):
                let result = ParkedJail.spawn(
                    shape: shape, host: host, cgroups: cgroups, network: network, forkServer: forkServer,
                    name: JailName.next("pool"))
                switch consume result {
                case .success(let jail):
                    let slot = ParkedJailSlot(jail)
                    let kept = state.withLock { s -> Bool in
                        // Evicted while it was being cloned: not wanted any more.
                        if s.stopping || !s.shapes.contains(shape) { return false }
                        s.parked[shape, default: []].append(slot)
                        return true
                    }
                    if !kept { slot.abort() }
                case .failure:
                    // The next on-demand spawn reports the failure with its stage.
                    _ = state.withLock { $0.failing.insert(shape) }
                }
            case .idle:
                // The fd stays open until this thread has been joined.
                let fd = state.withLock { $0.wakeFD }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, -1)
                var value: UInt64 = 0
                _ = read(fd, &value, 8)
            }
        }
    }
}
