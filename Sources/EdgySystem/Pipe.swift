import CEdgyJail
import Glibc
import SystemPackage

/// Both ends of a `pipe2(O_CLOEXEC)`. Ownership moves with `take…()`: each end is closed exactly
/// once, by whoever holds it last.
public struct PipeDescriptors: ~Copyable {
    public private(set) var readEnd: Int32
    public private(set) var writeEnd: Int32

    public init() throws(Errno) {
        var fds: [Int32] = [-1, -1]
        _ = try syscallRetrying { edgy_pipe_cloexec(&fds) }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    /// Hands the read end to the caller, who must close it.
    public mutating func takeReadEnd() -> Int32 {
        defer { readEnd = -1 }
        return readEnd
    }

    /// Hands the write end to the caller, who must close it.
    public mutating func takeWriteEnd() -> Int32 {
        defer { writeEnd = -1 }
        return writeEnd
    }

    deinit {
        if readEnd >= 0 { closeDescriptor(readEnd) }
        if writeEnd >= 0 { closeDescriptor(writeEnd) }
    }
}

/// Sets or clears `O_NONBLOCK`.
public func setNonBlocking(_ fd: Int32, _ on: Bool = true) throws(Errno) {
    let flags = try syscallRetrying { fcntl(fd, F_GETFL) }
    _ = try syscallRetrying { fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) }
}

/// An `eventfd(EFD_CLOEXEC | EFD_NONBLOCK)`, used to wake a poll loop from another thread.
public func makeEventFD() throws(Errno) -> Int32 {
    try syscallRetrying { edgy_eventfd() }
}

/// Signals an eventfd. Safe from any thread.
public func signalEventFD(_ fd: Int32) {
    var one: UInt64 = 1
    _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
}
