import CEdgyJail
import Glibc
import SystemPackage

/// Runs a libc call that returns -1 and sets errno on failure. `EINTR` is retried here, in one
/// place (swift-system `valueOrErrno(retryOnInterrupt:)`); `EBADF` and `EFAULT` are bugs in the
/// caller, not conditions to handle, so they trap (swift-nio `SystemCallHelpers`).
@inline(__always)
public func syscallRetrying<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let err = Errno(rawValue: errno)
        if err == .interrupted { continue }
        precondition(err != .badFileDescriptor && err != .badAddress, "syscall misuse: \(err)")
        throw err
    }
}

/// Repeats `step(done)`, a `read` or `write` of what is left from offset `done`, until `count`
/// bytes have moved, retrying `EINTR`: false on an error or an early end of file.
public func transferFully(_ count: Int, _ step: (Int) -> Int) -> Bool {
    var done = 0
    while done < count {
        let n = step(done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        done += n
    }
    return true
}

/// Writes all of `bytes` to `fd` (short writes and `EINTR` retried): false on an error.
@discardableResult
public func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    transferFully(bytes.count) { done in bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) } }
}

/// Closes an fd we own. `EINTR` on close is ignored: on Linux the fd is already gone.
public func closeDescriptor(_ fd: Int32) {
    let result = Glibc.close(fd)
    if result == -1 {
        precondition(errno != EBADF, "close of a descriptor we do not own: \(fd)")
    }
}

/// The symbolic name of an errno value, e.g. "ENOENT", for messages and reports.
public func errnoName(_ value: Int32) -> String {
    errnoNames[value] ?? "E\(value)"
}

/// The errno value for a name such as "EPERM", or nil.
public func errnoValue(named name: String) -> Int32? {
    errnoNames.first { $0.value == name }?.key
}

// Built with uniquingKeysWith: some names share a value (EOPNOTSUPP/ENOTSUP on Linux).
private let errnoNames: [Int32: String] = Dictionary([
    EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO",
    E2BIG: "E2BIG", ENOEXEC: "ENOEXEC", EBADF: "EBADF", ECHILD: "ECHILD", EAGAIN: "EAGAIN",
    ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST",
    EXDEV: "EXDEV", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL",
    ENFILE: "ENFILE", EMFILE: "EMFILE", ENOTTY: "ENOTTY", ETXTBSY: "ETXTBSY", EFBIG: "EFBIG",
    ENOSPC: "ENOSPC", ESPIPE: "ESPIPE", EROFS: "EROFS", EMLINK: "EMLINK", EPIPE: "EPIPE",
    ERANGE: "ERANGE", ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY",
    ELOOP: "ELOOP", EOVERFLOW: "EOVERFLOW", EOPNOTSUPP: "EOPNOTSUPP", EAFNOSUPPORT: "EAFNOSUPPORT",
    ECANCELED: "ECANCELED", EDQUOT: "EDQUOT", ECONNREFUSED: "ECONNREFUSED",
    ENETUNREACH: "ENETUNREACH", EADDRINUSE: "EADDRINUSE",
].map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })

/// `O_PATH` (asm-generic/fcntl.h), which the Glibc module exports only under `_GNU_SOURCE`: a
/// descriptor that names a file or directory without opening it for reading.
public let openPathOnly: Int32 = 0o10000000

/// glibc gives the free top of a heap back to the kernel once it passes 128 KiB (until a large
/// block has been freed), so a daemon that reads a megabyte of files for every attempt faults its
/// buffers in afresh each time. This keeps up to `keep` bytes free per heap and takes blocks under
/// `largest` from the heaps; what a burst freed beyond `keep` is still returned.
public func keepFreedMemoryForReuse(keep: Int32 = 32 << 20, largest: Int32 = 4 << 20) {
    _ = edgy_malloc_keep(largest, keep)
}
