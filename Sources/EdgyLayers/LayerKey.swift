import Crypto
import EdgyModel
import Foundation
import Glibc
import Synchronization

/// A layer's name: what determines its contents, hashed. Equal keys mean equal layers on any host.
public enum LayerKey {
    /// sha256 over the manifest, the lockfile, the policy's digest and the runtime's version,
    /// each length-prefixed (so no two different inputs run together the same way).
    public static func compute(manifest: [UInt8], lockfile: [UInt8]?, policyDigest: String, runtimeVersion: String) -> String {
        var hash = SHA256()
        for part in [Array("edgy-layer-1".utf8), manifest, lockfile ?? [], Array(policyDigest.utf8), Array(runtimeVersion.utf8)] {
            withUnsafeBytes(of: UInt64(part.count).littleEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: part)
        }
        return hex(hash.finalize())
    }

    /// Whether `text` has a key's shape (64 lower-case hex digits).
    public static func isKey(_ text: String) -> Bool { DependencyReport.isKey(text) }

    static func hex<D: Sequence<UInt8>>(_ digest: D) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }
}

/// A runtime's version for layer keys: the sha256 of its executable, so an upgraded interpreter
/// gets new layers. Hashed once per file state (device, inode, size, mtime).
public final class RuntimeVersions: Sendable {
    private struct FileState: Hashable {
        var device: UInt64, inode: UInt64, size: Int64, mtime: Int, mtimeNanos: Int
    }

    private let known = Mutex<[String: (FileState, String)]>([:])

    public init() {}

    /// The version of the executable at `path` (symlinks followed), or nil when it cannot be read.
    public func version(of path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let state = FileState(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), mtime: st.st_mtim.tv_sec,
            mtimeNanos: st.st_mtim.tv_nsec)
        if let (seen, version) = known.withLock({ $0[path] }), seen == state { return version }
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hash = SHA256()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { hash.update(data: chunk) }
        let version = "sha256:" + LayerKey.hex(hash.finalize())
        known.withLock { $0[path] = (state, version) }
        return version
    }
}
