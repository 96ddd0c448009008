import EdgySeccomp
import EdgySystem
import Glibc

/// Finds which syscall a seccomp kill was for. The signal alone does not say; the kernel logs
/// each `kill_process` action as an audit record (type 1326) with the host pid and the syscall
/// number, readable from /dev/kmsg (when `kernel.seccomp.actions_logged` includes kill_process,
/// the default).
enum SeccompAudit {
    /// The name of the syscall that got `pid` killed, or nil when the kernel log does not say.
    /// The kernel's audit thread writes the record asynchronously, so under load it may appear
    /// after the kill is seen: the log is read again for up to `patienceMs` (violations only).
    static func violatingSyscall(pid: pid_t, patienceMs: Int = 250) -> String? {
        let deadline = monotonicNanos() + UInt64(patienceMs) * 1_000_000
        while true {
            if let name = readViolatingSyscall(pid: pid) { return name }
            if monotonicNanos() >= deadline { return nil }
            usleep(10_000)
        }
    }

    private static func readViolatingSyscall(pid: pid_t) -> String? {
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let needle = " pid=\(pid) "
        var found: Int32?
        var record = [UInt8](repeating: 0, count: 8192)
        // One record per read; EAGAIN at the end of the buffer, EPIPE when records were overwritten.
        while true {
            let n = read(fd, &record, record.count)
            if n < 0 {
                if errno == EPIPE || errno == EINTR { continue }
                break
            }
            if n == 0 { break }
            let line = String(decoding: record[..<n], as: UTF8.self)
            guard line.contains("type=1326"), line.contains(needle),
                  let range = line.firstRange(of: " syscall=") else { continue }
            found = Int32(line[range.upperBound...].prefix { $0.isNumber })
        }
        return found.flatMap(SyscallNames.name(ofNativeSyscall:))
    }
}
