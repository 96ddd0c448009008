import Foundation
import Glibc

/// File-tree work on layers, with descriptors and `*at` calls that never follow a symlink: an
/// install step's output is the workload's, and may hold anything it could make.
enum LayerTree {
    struct CopyError: Error, CustomStringConvertible {
        var description: String
    }

    /// Most entries and depth a layer may have; deeper or larger trees are refused.
    static let maxEntries = 500_000
    static let maxDepth = 128

    /// Copies regular files, directories and symlinks from `source` into the new directory
    /// `destination`, owned by the caller (root), every file 0644 or 0755 (if any execute bit
    /// was set), directories 0755; devices, FIFOs and sockets are left out. Returns the bytes
    /// of the files copied.
    static func copy(from source: String, to destination: String) throws(CopyError) -> UInt64 {
        let from = open(source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard from >= 0 else { throw CopyError(description: "cannot open \(source): \(errnoName())") }
        defer { close(from) }
        guard mkdir(destination, 0o755) == 0 else { throw CopyError(description: "cannot create \(destination): \(errnoName())") }
        let to = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard to >= 0 else { throw CopyError(description: "cannot open \(destination): \(errnoName())") }
        defer { close(to) }
        var entries = 0
        var bytes: UInt64 = 0
        try copyDirectory(from, to, depth: 0, entries: &entries, bytes: &bytes)
        return bytes
    }

    private static func copyDirectory(_ from: Int32, _ to: Int32, depth: Int, entries: inout Int, bytes: inout UInt64) throws(CopyError) {
        guard depth < maxDepth else { throw CopyError(description: "the layer is nested deeper than \(maxDepth) directories") }
        for name in try names(in: from) {
            entries += 1
            guard entries <= maxEntries else { throw CopyError(description: "the layer has more than \(maxEntries) entries") }
            var st = stat()
            guard fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard mkdirat(to, name, 0o755) == 0 else { throw CopyError(description: "mkdir \(name): \(errnoName())") }
                let sub = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                let subTo = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                defer {
                    if sub >= 0 { close(sub) }
                    if subTo >= 0 { close(subTo) }
                }
                guard sub >= 0, subTo >= 0 else { throw CopyError(description: "open \(name): \(errnoName())") }
                try copyDirectory(sub, subTo, depth: depth + 1, entries: &entries, bytes: &bytes)
            case S_IFREG:
                let mode: mode_t = st.st_mode & 0o111 != 0 ? 0o755 : 0o644
                bytes += try copyFile(name, from, to, mode: mode)
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(from, name, &buffer, buffer.count - 1)
                guard n > 0 else { continue }
                buffer[n] = 0
                guard symlinkat(buffer, to, name) == 0 else { throw CopyError(description: "symlink \(name): \(errnoName())") }
                bytes += UInt64(n)
            default:
                continue  // devices, FIFOs, sockets: nothing a package needs
            }
        }
    }

    private static func copyFile(_ name: String, _ from: Int32, _ to: Int32, mode: mode_t) throws(CopyError) -> UInt64 {
        let input = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw CopyError(description: "open \(name): \(errnoName())") }
        defer { close(input) }
        let output = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard output >= 0 else { throw CopyError(description: "create \(name): \(errnoName())") }
        defer { close(output) }
        var total: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(input, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw CopyError(description: "read \(name): \(errnoName())") }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw CopyError(description: "write \(name): \(errnoName())") }
                written += w
            }
            total += UInt64(n)
        }
        guard fchmod(output, mode) == 0 else { throw CopyError(description: "chmod \(name): \(errnoName())") }
        return total
    }

    /// Bytes of regular files and symlinks under `path` (what `copy` counted).
    static func bytes(under path: String) -> UInt64 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        return bytes(in: fd, depth: 0)
    }

    private static func bytes(in fd: Int32, depth: Int) -> UInt64 {
        guard depth < maxDepth, let names = try? names(in: fd) else { return 0 }
        var total: UInt64 = 0
        for name in names {
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard sub >= 0 else { continue }
                total += bytes(in: sub, depth: depth + 1)
                close(sub)
            case S_IFREG, S_IFLNK:
                total += UInt64(st.st_size)
            default:
                continue
            }
        }
        return total
    }

    /// Removes `path` and everything under it; a missing path is fine.
    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The names in an open directory, without `.` and `..`. Reads through a duplicate, so the
    /// caller's descriptor stays open.
    private static func names(in fd: Int32) throws(CopyError) -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw CopyError(description: "cannot read a directory: \(errnoName())")
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    static func errnoName() -> String { String(cString: strerror(errno)) }
}
