import CEdgyJail
import EdgyCgroup
import EdgySystem
import Glibc
import Synchronization

/// Clones jails through `edgy-forkserver`, a small single-threaded C process, instead of from this
/// large multithreaded one: a clone here copies the daemon's page tables and write-protects every
/// page, so each write by any of its threads afterwards takes a copy-on-write fault and a TLB
/// shootdown (docs/performance.md).
///
/// The server only clones (with CLONE_PARENT) and writes the id maps; the jail is this process's
/// child, and its pidfd, gate, error pipe and plan memfd come back over the socket. Everything else
/// (the cgroup v1 attach, both gates, the seccomp listener, waitid) happens here exactly as for a
/// jail cloned in process, so the two cannot differ in what the jail gets.
///
/// One server per executable path and process, started by a thread of its own that lives as long as
/// the process: it is every jail's parent thread, so PR_SET_PDEATHSIG fires only when the process
/// dies. When the server dies (a crash, `kill -9`, a hang past the socket's 5 s timeout), that
/// thread reaps it and starts another; a spawn that met the dead server retries on the new one, and
/// after a few failures `start` says `unavailable` and the caller clones in process. Jails already
/// cloned do not depend on the server.
public final class ForkServer: Sendable {
    public let executable: String

    private struct State {
        var socket: Int32 = -1
        var pidfd: Int32 = -1
        var pid: pid_t = 0
        var generation = 0
        var sequence: UInt64 = 0
        var restarts = 0
        var served = 0
        var joinedCgroups = 0
        var lastError: String?
        /// The running server's `/proc/PID/cgroup`: where it goes back to after a v1 clone.
        var cgroupTable: String?
        /// `cgroupTable` parsed once (`JailCgroup.v1Groups`), not at every clone.
        var cgroupHomes: [String: String]?
        /// The executable speaks another protocol version: never used (`lastError` says which).
        var incompatible = false
    }
    /// Held across one request and its reply: the server answers one at a time, and the keeper
    /// thread swaps a dead server's socket only between exchanges.
    private let state = Mutex(State())

    private static let servers = Mutex<[String: ForkServer]>([:])

    /// The server for `executable`, started on first use.
    public static func shared(executable: String) -> ForkServer {
        servers.withLock { servers in
            if let server = servers[executable] { return server }
            let server = ForkServer(executable: executable)
            servers[executable] = server
            server.startKeeper()
            return server
        }
    }

    /// The server for `executable` if one was started, without starting one.
    public static func existing(executable: String) -> ForkServer? {
        servers.withLock { $0[executable] }
    }

    /// `edgy-forkserver` next to the running executable (edgyd, the test bundle, edgy-bench), or nil.
    public static func besideExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let candidate = String(path[..<slash]) + "/edgy-forkserver"
        return access(candidate, X_OK) == 0 ? candidate : nil
    }

    private init(executable: String) {
        self.executable = executable
    }

    /// The running server's pid (0 while none runs), for tests and diagnostics.
    public var pid: pid_t { state.withLock { $0.socket >= 0 ? $0.pid : 0 } }
    /// How many spawns a server answered (cloned, or reported the clone's failure).
    public var served: Int { state.withLock { $0.served } }
    /// How many of those children started inside their v1 groups, cloned from there (no attach).
    public var joinedCgroups: Int { state.withLock { $0.joinedCgroups } }
    /// The running server's `/proc/PID/cgroup` as read when it started.
    public var cgroupTable: String? { state.withLock { $0.cgroupTable } }
    /// How many times a server died and was replaced.
    public var restarts: Int { state.withLock { $0.restarts } }
    /// True when the executable speaks another protocol version than this edgyd (built apart):
    /// every jail is then cloned in process.
    public var isIncompatible: Bool { state.withLock { $0.incompatible } }
    /// Why the last start of a server failed, if it did.
    public var lastError: String? { state.withLock { $0.lastError } }

    /// Waits (up to `timeoutMs`) until a server is running; false if none came up (or it never
    /// will: `isIncompatible`).
    public func waitUntilRunning(timeoutMs: Int = 3000) -> Bool {
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while pid == 0 {
            if monotonicNanos() >= deadline || isIncompatible { return false }
            usleep(500)
        }
        return true
    }

    enum Started {
        /// Cloned; `joinedCgroup` when the child started inside the jail's v1 groups (no attach).
        case started(edgy_pending, joinedCgroup: Bool)
        /// edgy_spawn_start's own failure (clone, id maps): the same report as in process.
        case failed(edgy_child_error)
        /// No server answered: clone in process instead.
        case unavailable(String)
    }

    /// One jail cloned by the server: the clone and id maps of `edgy_spawn_start`. With `cgroup`
    /// (v1), the server clones from inside the jail's groups (see `edgy_jail.h`), so the child
    /// needs no attach, which would wait for an RCU grace period.
    func start(_ shape: inout edgy_shape, cgroup: JailCgroup?) -> Started {
        let deadline = monotonicNanos() + 3_000_000_000
        var transportFailures = 0
        while true {
            enum Step { case done(Started), notRunning, transport(Int32) }
            let step = state.withLock { s -> Step in
                if s.incompatible { return .done(.unavailable(s.lastError ?? "the fork server is incompatible")) }
                guard s.socket >= 0 else { return .notRunning }
                s.sequence += 1
                var pending = edgy_pending()
                var record = edgy_child_error()
                var joined: Int32 = 0
                var moves: [CChar] = []
                if let homes = s.cgroupHomes, let pairs = cgroup?.v1Moves(fromGroups: homes) {
                    for (group, home) in pairs { moves += Array(group.utf8CString) + Array(home.utf8CString) }
                }
                let rc = moves.withUnsafeBufferPointer { buffer in
                    edgy_forkserver_spawn(
                        s.socket, s.sequence, &shape, buffer.baseAddress, UInt32(buffer.count), &joined, &pending, &record)
                }
                if rc == 0 || rc == -1 { s.served += 1 }
                if rc == 0 && joined != 0 { s.joinedCgroups += 1 }
                if rc == 0 { return .done(.started(pending, joinedCgroup: joined != 0)) }
                if rc == -1 { return .done(.failed(record)) }
                let failure = errno
                // Too large to send (nothing was sent): the server is fine, this jail is cloned here.
                if failure == EMSGSIZE { return .done(.unavailable("the request is too large for the fork server")) }
                // Dead, hung or out of step: this server is done. The keeper thread reaps it and
                // starts the next one.
                _ = edgy_pidfd_send_signal(s.pidfd, SIGKILL)
                closeDescriptor(s.socket)
                s.socket = -1
                return .transport(failure)
            }
            switch step {
            case .done(let started):
                return started
            case .transport(let failure):
                transportFailures += 1
                if transportFailures >= 3 {
                    return .unavailable("the fork server failed: \(errnoName(failure))")
                }
            case .notRunning:
                if monotonicNanos() >= deadline {
                    return .unavailable("no fork server is running: \(lastError ?? "it did not start")")
                }
                usleep(500)
            }
        }
    }

    private func startKeeper() {
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<ForkServer>.fromOpaque(raw!).takeRetainedValue().keep()
            return nil
        }, box.toOpaque())
        if rc == 0 {
            pthread_detach(thread)
        } else {
            box.release()
            state.withLock { $0.lastError = "cannot start its thread: \(errnoName(rc))" }
        }
    }

    /// The keeper thread: start a server, wait for it to die, reap it, start the next. Never returns
    /// (it is the parent of every jail: its exit would kill them all).
    private func keep() {
        while true {
            var socket: Int32 = -1
            var pidfd: Int32 = -1
            var pid: pid_t = 0
            let rc = edgy_forkserver_launch(executable, &socket, &pidfd, &pid)
            guard rc == 0 else {
                state.withLock { $0.lastError = "cannot start \(executable): \(errnoName(-rc))" }
                sleep(1)
                continue
            }
            // The handshake: a server built apart from this edgyd is never used (a version
            // mismatch would fail every request), and is not restarted in a loop.
            var version: UInt32 = 0
            if edgy_forkserver_ping(socket, 0, &version) == 0, version != UInt32(EDGY_FORKSERVER_VERSION) {
                state.withLock { s in
                    s.incompatible = true
                    s.lastError = "\(executable) speaks fork server protocol \(version), this build \(EDGY_FORKSERVER_VERSION): install the edgy-forkserver built with this edgyd"
                }
                _ = edgy_pidfd_send_signal(pidfd, SIGKILL)
                var code: Int32 = 0
                var status: Int32 = 0
                _ = edgy_waitid_pidfd(pidfd, &code, &status, nil, 0)
                closeDescriptor(pidfd)
                closeDescriptor(socket)
                // This thread stays: it may be the parent of jails of an earlier server.
                while true { sleep(3600) }
            }
            let table = Self.readSmallFile("/proc/\(pid)/cgroup")
            let generation = state.withLock { s -> Int in
                s.generation += 1
                s.cgroupTable = table
                s.cgroupHomes = table.map(JailCgroup.v1Groups(from:))
                s.socket = socket
                s.pidfd = pidfd
                s.pid = pid
                return s.generation
            }
            let started = monotonicNanos()
            var code: Int32 = 0
            var status: Int32 = 0
            _ = edgy_waitid_pidfd(pidfd, &code, &status, nil, 0)
            state.withLock { s in
                // A client that met the dead server has closed the socket already.
                if s.generation == generation && s.socket >= 0 {
                    closeDescriptor(s.socket)
                    s.socket = -1
                }
                closeDescriptor(pidfd)
                s.pidfd = -1
                s.restarts += 1
                s.lastError = "the fork server (pid \(pid)) exited: \(code == CLD_EXITED ? "status \(status)" : "signal \(status)")"
            }
            // One that dies at once would otherwise be restarted in a tight loop.
            if monotonicNanos() - started < 100_000_000 { usleep(100_000) }
        }
    }

    /// A /proc file of a few KiB, or nil.
    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { closeDescriptor(fd) }
        var buffer = [UInt8](repeating: 0, count: 16384)
        let n = read(fd, &buffer, buffer.count)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }
}
