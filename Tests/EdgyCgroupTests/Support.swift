import Glibc
import Synchronization
@testable import EdgyCgroup

/// A spawned test process; stdin/stderr pipes are the parent's ends (O_CLOEXEC).
struct Child {
    let pid: pid_t
    var stdinFD: Int32 = -1
    var stderrFD: Int32 = -1

    /// Writes a line to the child's stdin (the "go" for `read x` scripts).
    func go() {
        let line = "go\n"
        _ = line.withCString { Glibc.write(stdinFD, $0, 3) }
    }

    /// Blocking reap; returns the raw wait status.
    @discardableResult
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if stdinFD >= 0 { close(stdinFD) }
        return status
    }

    /// Reads stderr to EOF (every writer must be gone).
    func readStderr() -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(stderrFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        close(stderrFD)
        return String(decoding: out, as: UTF8.self)
    }
}

func termSignal(_ status: Int32) -> Int32? {
    // WIFSIGNALED / WTERMSIG from <sys/wait.h>, which Swift does not import as functions.
    let sig = status & 0x7f
    return (sig != 0 && sig != 0x7f) ? sig : nil
}

/// posix_spawn `argv` with stdout to /dev/null; optional pipes on stdin and stderr.
/// Glibc hides `pipe2` without _GNU_SOURCE, so pipes get CLOEXEC after `pipe`; this lock keeps a
/// concurrently spawning test from inheriting an end in that window.
let spawnLock = Mutex(())

func cloexecPipe(_ fds: inout [Int32]) {
    precondition(pipe(&fds) == 0)
    for fd in fds { precondition(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) }
}

func spawn(_ argv: [String], stdinPipe: Bool = false, stderrPipe: Bool = false) -> Child {
    spawnLock.withLock { _ in spawnLocked(argv, stdinPipe: stdinPipe, stderrPipe: stderrPipe) }
}

private func spawnLocked(_ argv: [String], stdinPipe: Bool, stderrPipe: Bool) -> Child {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var inFDs: [Int32] = [-1, -1]
    var errFDs: [Int32] = [-1, -1]
    if stdinPipe {
        cloexecPipe(&inFDs)
        posix_spawn_file_actions_adddup2(&actions, inFDs[0], 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    if stderrPipe {
        cloexecPipe(&errFDs)
        posix_spawn_file_actions_adddup2(&actions, errFDs[1], 2)
    }
    var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
    precondition(rc == 0, "posix_spawn \(argv[0]): \(rc)")
    if stdinPipe { close(inFDs[0]) }
    if stderrPipe { close(errFDs[1]) }
    return Child(pid: pid, stdinFD: inFDs[1], stderrFD: errFDs[0])
}

/// Polls `cond` every 5 ms for up to `seconds`.
func eventually(_ seconds: Double = 5, _ cond: () -> Bool) -> Bool {
    let deadline = CgroupFS.nowNanos() + UInt64(seconds * 1e9)
    while CgroupFS.nowNanos() < deadline {
        if cond() { return true }
        CgroupFS.sleep(milliseconds: 5)
    }
    return cond()
}

/// A process that is gone or a zombie (killed, waiting for its reaper).
func isDeadOrZombie(_ pid: pid_t) -> Bool {
    guard let stat = CgroupFS.read("/proc/\(pid)/stat") else { return true }
    // "pid (comm) S ...": the state follows the last ')'.
    guard let close = stat.lastIndex(of: ")") else { return true }
    let rest = stat[stat.index(after: close)...].drop(while: { $0 == " " })
    return rest.first == "Z" || rest.first == "X"
}

func procState(_ pid: pid_t) -> Character? {
    guard let stat = CgroupFS.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
}

/// A parent group name unique to this test and process, so parallel tests never share one.
func uniqueParent(_ test: String) -> String {
    "edgyt-\(test)-\(getpid())"
}

let v1Root = "/sys/fs/cgroup"
let v1Controllers = ["freezer", "memory", "pids", "cpu", "cpuacct"]

/// Removes a test's parent group in every v1 hierarchy (the manager never removes its parent).
func removeV1Parent(_ parent: String) {
    for c in v1Controllers { rmdir("\(v1Root)/\(c)/\(parent)") }
}

func dirExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}
