import CEdgyJail
import EdgySystem
import Glibc
import Synchronization

/// What a filesystem plan needs to know of a policy mount's source on the host: whether it is a
/// symlink (and to what), whether it exists and is a directory, and the flags its mount locks.
struct MountSource: Equatable, Sendable {
    /// The link's target when the source is a readable symlink.
    var symlinkTarget: String?
    var exists: Bool
    var isDirectory: Bool
    /// `MS_NOEXEC`, `MS_NOATIME`, `MS_NODIRATIME`, `MS_RELATIME` as the source's mount has them: a
    /// remount in a user namespace must keep them.
    var lockedFlags: UInt

    /// Asks the host: `lstat`, then `readlink` or `stat` and `statvfs`.
    static func inspect(_ path: String) -> MountSource {
        var source = MountSource(symlinkTarget: nil, exists: false, isDirectory: false, lockedFlags: 0)
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
            source.symlinkTarget = withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX) + 1) { buffer in
                let n = readlink(path, buffer.baseAddress!, buffer.count - 1)
                guard n > 0 else { return nil }
                return String(decoding: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[..<n]), as: UTF8.self)
            }
            if source.symlinkTarget != nil { return source }
        }
        guard stat(path, &st) == 0 else { return source }
        source.exists = true
        source.isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        var vfs = statvfs()
        if statvfs(path, &vfs) == 0 {
            if vfs.f_flag & UInt(EDGY_ST_NOEXEC) != 0 { source.lockedFlags |= UInt(MS_NOEXEC) }
            if vfs.f_flag & UInt(EDGY_ST_NOATIME) != 0 { source.lockedFlags |= UInt(MS_NOATIME) }
            if vfs.f_flag & UInt(EDGY_ST_NODIRATIME) != 0 { source.lockedFlags |= UInt(MS_NODIRATIME) }
            if vfs.f_flag & UInt(EDGY_ST_RELATIME) != 0 { source.lockedFlags |= UInt(MS_RELATIME) }
        }
        return source
    }
}

/// Mount sources as inspected at most `maxAge` ago. Every attempt builds its filesystem plan on
/// its critical path, and asking the host costs three or four path lookups per mount (about
/// 65 µs for the default policy). A source that changes is seen within `maxAge`, which is
/// sooner than a parked jail, whose mounts were made when it was parked, is replaced.
final class MountSourceCache: Sendable {
    static let shared = MountSourceCache()

    let maxAgeNanos: UInt64
    /// Sources come from policies and dependency layers: a few dozen. Past this many (stale
    /// layers piling up), everything is inspected afresh.
    private let capacity = 512
    private let entries = Mutex<[String: (source: MountSource, inspectedAt: UInt64)]>([:])

    init(maxAgeNanos: UInt64 = 1_000_000_000) {
        self.maxAgeNanos = maxAgeNanos
    }

    func source(_ path: String, now: UInt64 = monotonicNanos()) -> MountSource {
        if let entry = entries.withLock({ $0[path] }), now &- entry.inspectedAt < maxAgeNanos { return entry.source }
        let source = MountSource.inspect(path)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[path] = (source, now)
        }
        return source
    }
}
