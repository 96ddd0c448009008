import EdgyModel
import EdgyPolicy
import EdgySystem
import Glibc
import SystemPackage

/// Moves a jail's stdio: feeds its stdin from the request, drains stdout and stderr into bounded
/// buffers and hands each kept chunk to the live reader. Owns the three fds and closes each once.
struct OutputPump: ~Copyable {
    private var stdinFD: Int32
    private var stdoutFD: Int32
    private var stderrFD: Int32
    private let stdinData: [UInt8]
    private var stdinOffset = 0
    private var stdoutBuffer: OutputBuffer
    private var stderrBuffer: OutputBuffer
    private let onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    private let chunk: UnsafeMutableRawBufferPointer
    private static let chunkSize = 64 * 1024

    init(
        stdio: (stdin: Int32, stdout: Int32, stderr: Int32), stdinData: [UInt8], limits: Policy.Limits,
        onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    ) {
        (stdinFD, stdoutFD, stderrFD) = stdio
        self.stdinData = stdinData
        self.onOutput = onOutput
        stdoutBuffer = OutputBuffer(capacity: limits.stdoutKib * 1024)
        stderrBuffer = OutputBuffer(capacity: limits.stderrKib * 1024)
        chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        if stdinData.isEmpty {
            closeDescriptor(stdinFD)
            stdinFD = -1
        } else {
            try? setNonBlocking(stdinFD)
        }
        try? setNonBlocking(stdoutFD)
        try? setNonBlocking(stderrFD)
    }

    deinit {
        for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { closeDescriptor(fd) }
        chunk.deallocate()
    }

    /// Either output pipe is still open.
    var isOpen: Bool { stdoutFD >= 0 || stderrFD >= 0 }

    /// A stream has passed its cap.
    var overflowed: Bool { stdoutBuffer.truncatedBytes > 0 || stderrBuffer.truncatedBytes > 0 }

    /// What to poll, in order: stdout, stderr (readable), stdin (writable); -1 for a closed one.
    var pollEntries: [pollfd] {
        [pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0),
         pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0),
         pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)]
    }

    /// Acts on the `revents` of `pollEntries`.
    mutating func handle(_ entries: ArraySlice<pollfd>) {
        let events = Array(entries)
        if events.count >= 3 {
            if events[0].revents != 0 { drain(.stdout) }
            if events[1].revents != 0 { drain(.stderr) }
            if events[2].revents != 0 { feedStdin() }
        }
    }

    /// Reads until the pipe is empty, so that a flood is drained at pipe speed; closes it at EOF
    /// or on an error.
    private mutating func drain(_ kind: OutputStreamKind) {
        let fd = kind == .stdout ? stdoutFD : stderrFD
        guard fd >= 0 else { return }
        var closed = false
        for _ in 0..<16 {
            let n: Int
            do {
                n = try syscallRetrying { read(fd, chunk.baseAddress, Self.chunkSize) }
            } catch {
                closed = error != .resourceTemporarilyUnavailable
                break
            }
            if n == 0 {
                closed = true
                break
            }
            let slice = UnsafeRawBufferPointer(rebasing: chunk[..<n])
            let kept = kind == .stdout ? stdoutBuffer.append(slice) : stderrBuffer.append(slice)
            if !kept.isEmpty { onOutput?(kind, kept) }
            if n < Self.chunkSize { break }
        }
        if closed {
            closeDescriptor(fd)
            if kind == .stdout { stdoutFD = -1 } else { stderrFD = -1 }
        }
    }

    /// Writes the next piece of the request's stdin; closes it when all is written (EOF for the
    /// workload) or the workload stopped reading (EPIPE).
    private mutating func feedStdin() {
        guard stdinFD >= 0 else { return }
        let fd = stdinFD, offset = stdinOffset
        let result: Result<Int, Errno> = stdinData.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return .success(0) }
            return Result { () throws(Errno) in
                try syscallRetrying { write(fd, base + offset, min(raw.count - offset, 64 * 1024)) }
            }
        }
        let written: Int?
        switch result {
        case .success(let n): written = n
        case .failure(let error): written = error == .resourceTemporarilyUnavailable ? 0 : nil
        }
        if let written { stdinOffset += written }
        if written == nil || stdinOffset >= stdinData.count {
            closeDescriptor(stdinFD)
            stdinFD = -1
        }
    }

    /// The kept output and how much was cut, into the report; closes what is still open.
    consuming func finish(into report: inout AttemptReport) {
        report.stdout = stdoutBuffer.kept
        report.stderr = stderrBuffer.kept
        report.stdoutTruncatedBytes = stdoutBuffer.truncatedBytes
        report.stderrTruncatedBytes = stderrBuffer.truncatedBytes
    }
}
