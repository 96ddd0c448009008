import EdgySystem
import Glibc
import SystemPackage

/// A control file, named relative to its group's directory when the group holds that directory
/// open: a path open walks every component (`/sys/fs/cgroup/<controller>/<parent>/<group>/<file>`,
/// through two mounts, each component revalidated by kernfs), and a jail opens several dozen.
struct CgroupFile {
    /// The held directory, or `AT_FDCWD` when `name` is the whole path.
    let directory: Int32
    let name: String
    /// The whole path, for errors.
    let path: String

    init(path: String) {
        directory = AT_FDCWD
        name = path
        self.path = path
    }

    /// `name` in `dir`, through `directoryFD` when it is open (>= 0).
    init(_ dir: String, _ name: String, directoryFD: Int32) {
        path = dir + "/" + name
        if directoryFD >= 0 {
            directory = directoryFD
            self.name = name
        } else {
            directory = AT_FDCWD
            self.name = path
        }
    }

    /// `openat(directory, name, flags | O_CLOEXEC)`: the fd, or -1 with errno set.
    func open(_ flags: Int32) -> Int32 {
        (try? syscallRetrying { Glibc.openat(directory, name, flags | O_CLOEXEC) }) ?? -1
    }
}

/// Small, fast file operations on cgroupfs: one open/read-or-write/close per call, errors with
/// path and errno. cgroup control files are tiny and never short-write, so no buffering.
///
/// - Important: This sits on the jail start-up hot path (`create`, `attach`): no Foundation.
enum CgroupFS {
    static var lastErrno: Errno { Errno(rawValue: Glibc.errno) }

    /// `open(path, flags | O_CLOEXEC)`: the fd, or -1 with errno set.
    static func open(_ path: String, _ flags: Int32) -> Int32 {
        CgroupFile(path: path).open(flags)
    }

    /// Writes `value` to the control file at `path` in one `write(2)`.
    static func write(
        _ path: String, _ value: String, what: @autoclosure () -> String, missingIsIO: Bool = false
    ) throws(CgroupError) {
        try write(CgroupFile(path: path), value, what: what(), missingIsIO: missingIsIO)
    }

    /// Writes `value` to a control file in one `write(2)`.
    /// A missing control file (`ENOENT`) is reported as `.missingController` unless `missingIsIO`
    /// (for files every group has, such as `cgroup.procs`, where `ENOENT` means the group is gone).
    static func write(
        _ file: CgroupFile, _ value: String, what: @autoclosure () -> String, missingIsIO: Bool = false
    ) throws(CgroupError) {
        let fd = file.open(O_WRONLY)
        guard fd >= 0 else {
            let e = lastErrno
            let code: CgroupError.Code = (e == .noSuchFileOrDirectory && !missingIsIO) ? .missingController : .io
            throw CgroupError(code, what(), path: file.path, errno: e)
        }
        defer { _ = Glibc.close(fd) }  // EINTR on close is ignored (NIO); the fd is gone either way.
        var v = value
        let written = v.withUTF8 { buf in Result { () throws(Errno) in try syscallRetrying { Glibc.write(fd, buf.baseAddress, buf.count) } } }
        if case .failure(let e) = written { throw CgroupError(.io, what(), path: file.path, errno: e) }
    }

    /// Reads a whole (small) file; `nil` if it cannot be opened or read.
    static func read(_ path: String) -> String? {
        read(CgroupFile(path: path))
    }

    /// Reads a whole (small) control file; `nil` if it cannot be opened or read.
    static func read(_ file: CgroupFile) -> String? {
        let fd = file.open(O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        return read(descriptor: fd)
    }

    /// Reads the whole file open at `fd` from its start (`pread`, so a held descriptor can be
    /// read again); `nil` on an error.
    static func read(descriptor fd: Int32) -> String? {
        var out: [UInt8] = []
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { chunk -> String? in
            var offset = 0
            while true {
                let read = Result { () throws(Errno) in try syscallRetrying { Glibc.pread(fd, chunk.baseAddress, chunk.count, off_t(offset)) } }
                guard case .success(let n) = read else { return nil }
                if n == 0 { break }
                out.append(contentsOf: chunk[0..<n])
                offset += n
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// `mkdir`; `EEXIST` is reported only when `allowExisting` is false.
    static func mkdir(_ path: String, allowExisting: Bool) throws(CgroupError) {
        try mkdir(CgroupFile(path: path), allowExisting: allowExisting)
    }

    /// `mkdirat`; `EEXIST` is reported only when `allowExisting` is false.
    static func mkdir(_ dir: CgroupFile, allowExisting: Bool) throws(CgroupError) {
        if mkdirat(dir.directory, dir.name, 0o755) == 0 { return }
        let e = lastErrno
        if e == .fileExists && allowExisting { return }
        throw CgroupError(.io, "create cgroup directory", path: dir.path, errno: e)
    }

    /// `rmdir`; a directory that is already gone counts as removed.
    static func rmdir(_ path: String) -> Errno? {
        if Glibc.rmdir(path) == 0 { return nil }
        let e = lastErrno
        return e == .noSuchFileOrDirectory ? nil : e
    }

    /// Names of the subdirectories of `path` (child cgroups). Empty if unreadable.
    static func subdirectories(_ path: String) -> [String] {
        subdirectories(CgroupFile(path: path))
    }

    /// Names of the subdirectories of the directory `file` names (`.` in a held one). Empty if unreadable.
    static func subdirectories(_ file: CgroupFile) -> [String] {
        let fd = file.open(O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return [] }
        guard let dir = fdopendir(fd) else {
            _ = Glibc.close(fd)
            return []
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let ent = readdir(dir) {
            guard ent.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Parses `cgroup.procs`: one decimal pid per line.
    static func pids(in text: String) -> [pid_t] {
        text.split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`,
    /// `pids.events`): lines of `key value`.
    static func keyed(_ key: String, in text: String) -> UInt64? {
        var text = text
        return text.withUTF8 { keyed(key, in: UnsafeRawBufferPointer($0)) }
    }

    /// `keyed(_:in:)` on the file's bytes, without making a String of them: the end of every
    /// attempt parses its group's counters.
    static func keyed(_ key: String, in bytes: UnsafeRawBufferPointer) -> UInt64? {
        var key = key
        return key.withUTF8 { key -> UInt64? in
            var lineStart = 0
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != newline { lineEnd += 1 }
                let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])
                if line.count > key.count && line[key.count] == space
                    && line.prefix(key.count).elementsEqual(key) {
                    return number(in: UnsafeRawBufferPointer(rebasing: line[(key.count + 1)...]))
                }
                lineStart = lineEnd + 1
            }
            return nil
        }
    }

    /// A single-number file (`memory.peak`, `pids.peak`, `cpuacct.usage`); `nil` if "max".
    static func number(in text: String) -> UInt64? {
        var text = text
        return text.withUTF8 { number(in: UnsafeRawBufferPointer($0)) }
    }

    /// `number(in:)` on the file's bytes: decimal digits between optional spaces, tabs and
    /// newlines; nil for anything else or a value beyond `UInt64`.
    static func number(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        var start = 0, end = bytes.count
        while start < end && isBlank(bytes[start]) { start += 1 }
        while end > start && isBlank(bytes[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        var value: UInt64 = 0
        for byte in bytes[start..<end] {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (tens, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = tens.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflowed && !carried else { return nil }
            value = sum
        }
        return value
    }

    private static let newline = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == space || byte == newline || byte == UInt8(ascii: "\t")
    }

    /// EdgySystem's sleep, which resumes after a signal.
    static func sleep(milliseconds: Int) {
        sleepMilliseconds(milliseconds)
    }

    /// EdgySystem's monotonic clock, for deadlines.
    static func nowNanos() -> UInt64 {
        monotonicNanos()
    }
}
