import EdgyModel
import EdgyStore
import Foundation
import Glibc

/// Large blobs' bytes in a directory: `ab/cd/abcd…` (sha256 hex, two fan-out levels so no directory
/// grows past 65,536 entries). A blob is written to `.tmp` and renamed into place (fsynced, with its
/// directory, for uploads): a crash leaves the whole blob or none of it. Files are 0600 under a
/// 0700 directory: only edgyd reads them. Reads check the bytes against the name.
struct BlobDirectory: Sendable {
    let path: String

    init(path: String) throws {
        self.path = path
        for directory in [path, path + "/.tmp"] where mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw SQLiteStoreError("cannot create the blob directory \(directory): \(String(cString: strerror(errno)))")
        }
    }

    func file(_ sha256: String) -> (directory: String, file: String) {
        let hex = Array(sha256)
        let directory = "\(path)/\(String(hex[0..<2]))/\(String(hex[2..<4]))"
        return (directory, "\(directory)/\(sha256)")
    }

    func exists(_ sha256: String) -> Bool { access(file(sha256).file, F_OK) == 0 }

    /// Writes `bytes` to a temporary file, fsynced unless `sync` is false; `commit` moves it into place.
    func stage(_ bytes: [UInt8], sync: Bool = true) throws -> String {
        let temporary = "\(path)/.tmp/\(UUID().uuidString)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SQLiteStoreError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw SQLiteStoreError("cannot write blob bytes to \(temporary): \(reason)")
            }
            written += n
        }
        guard !sync || fsync(fd) == 0 else {
            unlink(temporary)
            throw SQLiteStoreError("cannot fsync \(temporary): \(String(cString: strerror(errno)))")
        }
        return temporary
    }

    /// Renames a staged file into place as `sha256` (replacing an equal one) and fsyncs its
    /// directory, unless `sync` is false.
    func commit(_ staged: String, as sha256: String, sync: Bool = true) throws {
        let (directory, file) = file(sha256)
        let parent = String(directory.dropLast(3))
        for dir in [parent, directory] where mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw SQLiteStoreError("cannot create \(dir): \(String(cString: strerror(errno)))")
        }
        guard rename(staged, file) == 0 else {
            throw SQLiteStoreError("cannot move a blob into \(file): \(String(cString: strerror(errno)))")
        }
        guard sync else { return }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    func discard(_ staged: String) { unlink(staged) }

    /// The bytes of `sha256`, checked against it; nil when there is no such file.
    func read(_ sha256: String) throws -> [UInt8]? {
        let name = file(sha256).file
        let fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw SQLiteStoreError("cannot open \(name): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SQLiteStoreError("cannot stat \(name): \(String(cString: strerror(errno)))") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BlobCorruptedError(sha256: sha256) }
            done += n
        }
        guard BlobDigest.sha256Hex(bytes) == sha256 else { throw BlobCorruptedError(sha256: sha256) }
        return bytes
    }

    func remove(_ sha256: String) { unlink(file(sha256).file) }

    /// Staged files left by a crash between staging and commit. Only old ones: another process
    /// on the same database (the `edgy` CLI beside edgyd) may be staging right now.
    func removeStaged(olderThan age: TimeInterval = 3600) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path + "/.tmp") else { return }
        let cutoff = Date().addingTimeInterval(-age).timeIntervalSince1970
        for name in names {
            var info = stat()
            let file = "\(path)/.tmp/\(name)"
            if lstat(file, &info) == 0, Double(info.st_mtim.tv_sec) < cutoff { unlink(file) }
        }
    }
}
