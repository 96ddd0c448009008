import CEdgyJail
import Glibc

/// Runs one of the host's networking tools (iproute2's `ip`) with its input on stdin and waits.
/// posix_spawn (a vfork) is safe from the daemon's many threads; every fd but the three stdio
/// ones is closed in the tool, so it holds no jail's pipes.
enum HostTool {
    /// The first of `candidates` that exists and is executable.
    static func find(_ candidates: [String]) -> String? {
        candidates.first { access($0, X_OK) == 0 }
    }

    static let ip = find(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"])

    /// - Returns: nil on success, else what went wrong (the tool's stderr, first lines).
    static func run(_ path: String, _ arguments: [String], input: String = "") -> String? {
        var stdinPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard edgy_pipe_cloexec(&stdinPipe) == 0 else { return "pipe: errno \(errno)" }
        guard edgy_pipe_cloexec(&stderrPipe) == 0 else {
            close(stdinPipe[0]); close(stdinPipe[1])
            return "pipe: errno \(errno)"
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        edgy_spawn_close_from(&actions, 3)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, [nil])
        close(stdinPipe[0])
        close(stderrPipe[1])
        guard rc == 0 else {
            close(stdinPipe[1]); close(stderrPipe[0])
            return "cannot run \(path): errno \(rc)"
        }
        let bytes = Array(input.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(stdinPipe[1], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            written += n
        }
        close(stdinPipe[1])
        var errors: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while errors.count < 16_384 {
            let n = chunk.withUnsafeMutableBytes { read(stderrPipe[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            errors += chunk[0..<n]
        }
        close(stderrPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        if exited && (status >> 8) & 0xff == 0 { return nil }
        let message = String(decoding: errors, as: UTF8.self).split(separator: "\n").prefix(3).joined(separator: " | ")
        return message.isEmpty ? "\(path) failed (status \(status))" : message
    }
}
