import EdgyModel
import Foundation
import Glibc

/// A child process of a test, every wait on which has a deadline.
///
/// Foundation's `Process` waits without one (`waitUntilExit`, `readDataToEndOfFile`) and can miss
/// the exit of a child that leaves a grandchild holding its pipes, which is how a test run sits
/// forever at 0% CPU. Here output goes to files, not pipes, and the exit is polled with
/// `waitpid(WNOHANG)` until a deadline, after which the child is killed.
public final class BoundedProcess: @unchecked Sendable {
    // @unchecked because: `exit` is guarded by `lock`; the rest is immutable after init.
    public let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String
    private let lock = NSLock()
    private var exit: Termination?

    public struct Termination: Sendable, Hashable {
        /// The exit code, or nil when a signal ended the process.
        public var code: Int32?
        public var signal: Int32?
        /// The shell's convention: the exit code, or 128 + the signal.
        public var status: Int32 { code ?? 128 + (signal ?? 0) }
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public var command: String
        public var seconds: Double
        public var description: String { "\(command) did not exit within \(seconds) s and was killed" }
    }

    /// Starts `executable` (an absolute path) with `arguments`. Standard output and error go to
    /// `stdoutPath`/`stderrPath` when given (appended), else to temporary files read by `output()`.
    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil,
        directory: String? = nil, stdin stdinPath: String = "/dev/null",
        stdoutPath: String? = nil, stderrPath: String? = nil
    ) throws {
        let unique = "\(getpid())-\(UUID().uuidString.prefix(8))"
        self.stdoutPath = stdoutPath ?? NSTemporaryDirectory() + "edgy-test-out-\(unique)"
        self.stderrPath = stderrPath ?? NSTemporaryDirectory() + "edgy-test-err-\(unique)"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, self.stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, self.stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so a deadline kills whatever it started too.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        // Swift's Glibc does not export posix_spawn_file_actions_addchdir_np; GNU env changes directory instead.
        let (program, argv) = directory.map { ("/usr/bin/env", ["/usr/bin/env", "-C", $0, executable] + arguments) }
            ?? (executable, [executable] + arguments)
        var child: pid_t = 0
        let status = withCStrings(argv) { argvPointers in
            withCStrings(env) { envPointers in
                posix_spawn(&child, program, &actions, &attributes, argvPointers, envPointers)
            }
        }
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
        pid = child
    }

    /// Runs a command to its end, at most `timeout`, and returns its status and output.
    public static func run(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil,
        directory: String? = nil, stdin: String = "/dev/null", timeout: Duration = .seconds(120)
    ) throws -> (termination: Termination, stdout: String, stderr: String) {
        let process = try BoundedProcess(executable, arguments, environment: environment, directory: directory, stdin: stdin)
        defer { process.removeOutputFiles() }
        let termination = try process.wait(timeout: timeout)
        let (out, err) = process.output()
        return (termination, out, err)
    }

    /// `run` for async callers: polls with `Task.sleep`, so no thread of the cooperative pool blocks.
    public static func run(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil,
        directory: String? = nil, stdin: String = "/dev/null", timeout: Duration = .seconds(120)
    ) async throws -> (termination: Termination, stdout: String, stderr: String) {
        let process = try BoundedProcess(executable, arguments, environment: environment, directory: directory, stdin: stdin)
        defer { process.removeOutputFiles() }
        let deadline = ContinuousClock.now + timeout
        while process.poll() == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let termination = try process.wait(timeout: .zero)
        let (out, err) = process.output()
        return (termination, out, err)
    }

    /// Whether the process has not exited yet (reaps it when it has).
    public var isRunning: Bool { poll() == nil }

    /// The termination once the process has exited, without waiting.
    public func poll() -> Termination? {
        lock.lock()
        defer { lock.unlock() }
        if let exit { return exit }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        guard reaped == pid else { return nil }
        let signal = status & 0x7f
        exit = signal == 0 ? Termination(code: (status >> 8) & 0xff, signal: nil) : Termination(code: nil, signal: signal)
        return exit
    }

    /// Waits for the exit at most `timeout`; past it, kills the process group and throws.
    @discardableResult
    public func wait(timeout: Duration) throws -> Termination {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if let termination = poll() { return termination }
            usleep(5_000)
        } while ContinuousClock.now < deadline
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        let killedBy = ContinuousClock.now + .seconds(10)
        while poll() == nil, ContinuousClock.now < killedBy { usleep(5_000) }
        throw TimedOut(command: "process \(pid)", seconds: Double(timeout.components.seconds))
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`; returns how it ended.
    @discardableResult
    public func terminate(grace: Duration = .seconds(30)) -> Termination? {
        if let done = poll() { return done }
        kill(pid, SIGTERM)
        return try? wait(timeout: grace)
    }

    /// SIGKILL and reap.
    public func kill9() {
        guard poll() == nil else { return }
        kill(pid, SIGKILL)
        _ = try? wait(timeout: .seconds(10))
    }

    /// What the process wrote so far (when its output went to this object's temporary files).
    public func output() -> (stdout: String, stderr: String) {
        ((try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "", (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }

    public func removeOutputFiles() {
        unlink(stdoutPath)
        unlink(stderrPath)
    }

    deinit {
        if poll() == nil {
            kill(pid, SIGKILL)
            _ = try? wait(timeout: .seconds(10))
        }
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return body(&pointers)
}
