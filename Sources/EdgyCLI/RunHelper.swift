import CEdgyJail
import EdgyJail
import EdgyModel
import EdgyRunProtocol
import EdgySeccomp
import EdgySystem
import Foundation
import Glibc
import Synchronization

/// `edgy helper`'s server: runs `edgy run` for the C front end (Sources/edgy-front/main.c), which
/// connects to its socket, hands over its arguments, working directory, stdout and stderr, and
/// exits with the status the helper replies.
///
/// What a run saves here: the Swift runtime's start, reading the policy (`PolicyFileCache`) and
/// compiling its seccomp filter (cached in memory), the cgroup manager's detection, and the
/// jail's clone and filesystem (the pool keeps jails of each shape used parked, and the fork
/// server clones them). The run itself is the same `RunInvocation` the CLI runs, so its output,
/// report and exit status are the same.
///
/// Only this user may connect: the socket is 0600 and every peer's uid is checked. Each connection
/// gets a thread of its own; a run's policy and files are read with the process's working directory
/// set to the client's, one run at a time (the directory is per process), and the jails run in
/// parallel. A client that goes away (Ctrl-C) cancels its jail.
final class RunHelper: Sendable {
    static let defaultSocket = "/run/edgy/run.sock"
    /// How long a client may take to send its request after it connected.
    static let requestTimeoutSeconds = 2

    let socketPath: String
    /// Runs served at once; the clients past it are declined and run alone.
    let maxRuns: Int
    let listener: Int32
    let host: JailHostConfiguration
    private let supervisors = Mutex<[Bool: JailSupervisor]>([:])
    private let policies = PolicyFileCache()
    /// Held while a run's policy and files are read from its client's working directory.
    private let workingDirectory = Mutex(())
    /// Connections being served, when the last one ended, and whether the helper is stopping.
    private let activity: Mutex<(running: Int, lastEnded: UInt64, stopping: Bool)>
    /// The runs in flight, so that a stop can cancel them.
    private let inFlight = Mutex<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))

    init(socketPath: String, host: JailHostConfiguration, maxRuns: Int = 64) throws(RunFailure) {
        self.socketPath = socketPath
        self.maxRuns = maxRuns
        self.host = host
        activity = Mutex((0, monotonicNanos(), false))
        // The socket's directory (`/run/edgy` by default) is made if missing; a relative path's is not.
        if socketPath.hasPrefix("/"), let slash = socketPath.lastIndex(of: "/"), slash != socketPath.startIndex {
            var current = ""
            for component in socketPath[..<slash].split(separator: "/") {
                current += "/"
                current += String(component)
                if mkdir(current, 0o755) != 0 && errno != EEXIST {
                    throw RunFailure(message: "cannot create \(current): \(errnoName(errno))")
                }
            }
        }
        var status = stat()
        if lstat(socketPath, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw RunFailure(message: "\(socketPath) exists and is not a socket")
            }
            let probe = edgy_seqpacket_connect(socketPath)
            if probe >= 0 {
                closeDescriptor(probe)
                throw RunFailure(message: "another helper already serves \(socketPath)")
            }
            // Left by a helper that was killed: nobody listens.
            unlink(socketPath)
        }
        let fd = edgy_seqpacket_listen(socketPath, 128)
        guard fd >= 0 else { throw RunFailure(message: "cannot listen on \(socketPath): \(errnoName(-fd))") }
        listener = fd
    }

    /// Accepts runs until `idleExitSeconds` (0: never) pass with none running; then removes the socket.
    func serve(idleExitSeconds: Int) {
        while true {
            var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, 1000)
            if polled < 0 && errno != EINTR { break }
            if polled <= 0 {
                if idleExitSeconds > 0 && isIdle(forSeconds: idleExitSeconds) { break }
                continue
            }
            let connection = edgy_accept_cloexec(listener)
            guard connection >= 0 else { continue }
            let admitted = activity.withLock { activity -> Bool in
                guard activity.running < maxRuns, !activity.stopping else { return false }
                activity.running += 1
                return true
            }
            guard admitted else {
                _ = writeFully(connection, RunHelperReply.declined.bytes)
                closeDescriptor(connection)
                continue
            }
            Thread.detachNewThread { [self] in
                serveConnection(connection)
                closeDescriptor(connection)
                activity.withLock { $0 = ($0.running - 1, monotonicNanos(), $0.stopping) }
            }
        }
        stop()
    }

    /// Stops taking runs (the socket goes), cancels those in flight and waits up to 10 s for them
    /// to end, then kills the parked jails. The process must not exit before: a v1 jail killed
    /// while its group is frozen would stay frozen.
    func stop() {
        let first = activity.withLock { activity -> Bool in
            defer { activity.stopping = true }
            return !activity.stopping
        }
        guard first else { return }
        unlink(socketPath)
        for task in inFlight.withLock({ Array($0.tasks.values) }) { task.cancel() }
        let deadline = monotonicNanos() + 10_000_000_000
        while activity.withLock({ $0.running }) > 0 && monotonicNanos() < deadline { usleep(10_000) }
        let all = supervisors.withLock { Array($0.values) }
        for supervisor in all { supervisor.shutdown() }
    }

    private func isIdle(forSeconds seconds: Int) -> Bool {
        activity.withLock { $0.running == 0 && monotonicNanos() - $0.lastEnded >= UInt64(seconds) * 1_000_000_000 }
    }

    /// One client: its request, its run, its reply, and one line in the helper's log. Every fd it
    /// handed over is closed here.
    private func serveConnection(_ connection: Int32) {
        var uid: UInt32 = 0
        var pid: Int32 = 0
        guard edgy_peer_credentials(connection, &uid, &pid) == 0 else { return }
        guard uid == geteuid() else {
            log("refused pid \(pid): it runs as uid \(uid), this helper as \(geteuid())")
            return
        }
        var timeout = timeval(tv_sec: Self.requestTimeoutSeconds, tv_usec: 0)
        _ = setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // One byte more than a request may have: a longer message arrives truncated and is refused.
        var buffer = [UInt8](repeating: 0, count: RunHelperRequest.maxBytes + 1)
        var fds: [Int32] = [-1, -1, -1]
        var fdCount: Int32 = 0
        let length = edgy_recv_with_fds(connection, &buffer, buffer.count, &fds, 3, &fdCount)
        guard length > 0 else {
            log("pid \(pid): no request (\(length == 0 ? "it hung up" : errnoName(Int32(-length))))")
            return
        }
        let handed = Array(fds.prefix(Int(fdCount)))
        defer { for fd in handed { closeDescriptor(fd) } }
        let arguments: [String]
        do {
            arguments = try RunHelperRequest.decode(buffer.prefix(length))
        } catch {
            log("pid \(pid): malformed request: \(error)")
            return
        }
        guard handed.count == 3 else {
            log("pid \(pid): malformed request: \(handed.count) fds attached, not 3")
            return
        }

        // Help, mistakes and unusual forms are the CLI's: its ArgumentParser says what is wrong.
        guard let invocation = RunInvocation.fastParse(arguments[...]) else {
            _ = writeFully(connection, RunHelperReply.declined.bytes)
            return
        }
        let output = RunOutput(stdout: handed[1], stderr: handed[2])
        let (status, summary) = run(invocation, workingDirectory: handed[0], output: output, connection: connection)
        _ = writeFully(connection, RunHelperReply.exited(status).bytes)
        log("pid \(pid): \(summary.hasPrefix("edgy: ") ? String(summary.dropFirst(6)) : summary)")
    }

    private func log(_ line: String) {
        printError("edgy helper: \(line)")
    }

    /// Reads the run's policy and files from the client's directory, runs it, and cancels it if the
    /// client goes away; its exit status and summary.
    private func run(_ invocation: RunInvocation, workingDirectory directory: Int32, output: RunOutput, connection: Int32) -> (Int32, String) {
        let request: JailRequest
        let supervisor: JailSupervisor
        do {
            request = try workingDirectory.withLock { _ throws(RunFailure) in
                guard fchdir(directory) == 0 else {
                    throw RunFailure(message: "cannot enter the working directory: \(errnoName(errno))")
                }
                return try invocation.request(output: output, loadPolicy: policies.load(file:))
            }
            supervisor = try self.supervisor(cgroups: !invocation.noCgroup)
        } catch {
            output.message("edgy: \(error.message)")
            return (EdgyExitCode.edgyFailed, error.message)
        }

        let result = Mutex<(Int32, String)>((EdgyExitCode.edgyFailed, "the run did not report"))
        guard let done = try? makeEventFD() else {
            output.message("edgy: the helper cannot create an eventfd")
            return (EdgyExitCode.edgyFailed, "no eventfd")
        }
        defer { closeDescriptor(done) }
        let running = Task {
            let ended = await invocation.run(request, on: supervisor, output: output)
            result.withLock { $0 = ended }
            signalEventFD(done)
        }
        let id = inFlight.withLock { inFlight -> Int in
            inFlight.next += 1
            inFlight.tasks[inFlight.next] = running
            return inFlight.next
        }
        defer { _ = inFlight.withLock { $0.tasks.removeValue(forKey: id) } }
        // A stop that began before the run was registered did not see it.
        if activity.withLock({ $0.stopping }) { running.cancel() }
        // The client sends nothing more: anything readable is its end going away.
        var watched = connection
        while true {
            var fds = [pollfd(fd: done, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: watched, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno != EINTR { watched = -1 }
                continue
            }
            if fds[0].revents != 0 { break }
            if fds[1].revents != 0 {
                running.cancel()
                watched = -1
            }
        }
        return result.withLock { $0 }
    }

    /// One supervisor per cgroup choice, made at its first run: its pool and compiled filters stay.
    private func supervisor(cgroups: Bool) throws(RunFailure) -> JailSupervisor {
        try supervisors.withLock { all throws(RunFailure) in
            if let existing = all[cgroups] { return existing }
            let made = try WorkloadOptions.makeSupervisor(cgroups: cgroups, host: host)
            all[cgroups] = made
            return made
        }
    }
}
