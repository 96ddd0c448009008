import EdgyPolicy
import Glibc
import Synchronization

/// The policies an `edgy helper` loaded, each kept while the files it may have read stay as they
/// were: its own file and every `.toml` beside it (where `extends` looks), compared by inode,
/// size, mtime and ctime. Reading a policy costs about a millisecond (TOML, checks, digest), the
/// comparison a directory listing.
final class PolicyFileCache: Sendable {
    /// Past this many policies the cache starts over.
    static let capacity = 64

    private let entries = Mutex<[String: (signature: [FileSignature], loaded: LoadedPolicy)]>([:])

    struct FileSignature: Equatable {
        var name: String
        var inode: UInt64
        var size: Int64
        var modified: timespec
        var changed: timespec

        static func == (a: Self, b: Self) -> Bool {
            a.name == b.name && a.inode == b.inode && a.size == b.size && a.modified.tv_sec == b.modified.tv_sec
                && a.modified.tv_nsec == b.modified.tv_nsec && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    /// `PolicyLoader.load(file:)`, from the cache when nothing it read changed. Relative paths are
    /// the working directory's. Failures are never kept.
    func load(file: String) throws(PolicyLoadError) -> LoadedPolicy {
        let (_, directory) = PolicyLoader.nameAndDirectory(of: file)
        let base = file.split(separator: "/").last.map(String.init) ?? file
        let key = directory + "/" + base
        guard let signature = Self.signature(directory: directory, file: base) else { return try PolicyLoader.load(file: file) }
        if let hit = entries.withLock({ $0[key] }), hit.signature == signature { return hit.loaded }
        let loaded = try PolicyLoader.load(file: file)
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[key] = (signature, loaded)
        }
        return loaded
    }

    /// `file` and the `.toml` files in `directory`, sorted by name; nil when it cannot be listed.
    static func signature(directory: String, file: String) -> [FileSignature]? {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard let stream = fdopendir(fd) else {
            close(fd)
            return nil
        }
        defer { closedir(stream) }
        var names: [String] = [file]
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".toml") && name != file { names.append(name) }
        }
        var signature: [FileSignature] = []
        for name in names.sorted() {
            var status = stat()
            guard fstatat(fd, name, &status, 0) == 0 else { return nil }
            signature.append(FileSignature(
                name: name, inode: UInt64(status.st_ino), size: Int64(status.st_size), modified: status.st_mtim, changed: status.st_ctim))
        }
        return signature
    }
}
