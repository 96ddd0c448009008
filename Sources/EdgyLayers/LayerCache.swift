import EdgyModel
import Foundation
import Glibc
import Logging
import Synchronization

/// What an install step gave: the layer's size (it is now sealed at its path), or why not (its
/// report says whether trying again may help: `retryable`).
public struct InstallResult: Sendable {
    public var report: DependencyReport
    /// Bytes of the sealed layer; nil when the install failed.
    public var layerBytes: UInt64?

    public init(report: DependencyReport, layerBytes: UInt64?) {
        self.report = report
        self.layerBytes = layerBytes
    }
}

/// A layer in use by one attempt: it is not evicted until released.
public final class LayerLease: Sendable {
    public let key: String
    /// The sealed layer directory, to bind read-only into the jail.
    public let path: String
    private let cache: LayerCache
    private let released = Atomic<Bool>(false)

    init(key: String, path: String, cache: LayerCache) {
        self.key = key
        self.path = path
        self.cache = cache
    }

    /// Ends the use (idempotent); the cache may then evict the layer.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        cache.release(key)
    }

    deinit { release() }
}

/// How `acquire` went.
public enum LayerAcquisition: Sendable {
    case ready(LayerLease, DependencyReport)
    case failed(DependencyReport)
}

/// Sealed dependency layers on this host's disk, one directory per key under `directory`:
/// installed once (concurrent requests for a key wait for the one install), evicted least
/// recently used first when their bytes pass `capBytes`, never while an attempt uses them.
public final class LayerCache: Sendable {
    private struct Entry {
        var bytes: UInt64
        var lastUsed: Date
        var users: Int
    }

    private struct State {
        var ready: [String: Entry] = [:]
        var installing: [String: Task<InstallResult, Never>] = [:]
    }

    public let directory: String
    public let capBytes: UInt64
    private let state = Mutex(State())
    private let logger: Logger
    /// Called with a layer's path before it is removed, so parked jails let go of it.
    private let willRemove: @Sendable (String) -> Void

    /// Opens (creating) the layer directory and takes stock of the layers in it. What an earlier
    /// run left half done (install scratch mounts, staging copies) is removed.
    public init(directory: String, capBytes: UInt64, logger: Logger, willRemove: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.willRemove = willRemove
        self.directory = directory
        self.capBytes = capBytes
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        // Searchable by the jail (it binds its scratch tmpfs from here by path), not listable.
        try FileManager.default.createDirectory(atPath: scratchDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
        for name in (try? FileManager.default.contentsOfDirectory(atPath: scratchDirectory)) ?? [] {
            let path = scratchDirectory + "/" + name
            umount2(path, Int32(MNT_DETACH))
            LayerTree.remove(path)
        }
        var found: [String: Entry] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name != ".scratch" {
            let path = directory + "/" + name
            guard LayerKey.isKey(name) else {
                if name.hasPrefix(".staging-") || name.hasPrefix(".trash-") { LayerTree.remove(path) }
                continue
            }
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { continue }
            let lastUsed = Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
            found[name] = Entry(bytes: LayerTree.bytes(under: path), lastUsed: lastUsed, users: 0)
        }
        state.withLock { $0.ready = found }
        evict()
    }

    /// Why jails could not reach layers under `directory` by path (a parent others cannot
    /// search), or nil when they can.
    public static func unreachable(_ directory: String) -> String? {
        var path = ""
        for component in URL(fileURLWithPath: directory).resolvingSymlinksInPath().path.split(separator: "/").dropLast() {
            path += "/" + component
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if st.st_mode & 0o001 == 0 {
                return "\(path) is not searchable by other users (mode \(String(st.st_mode & 0o7777, radix: 8))), and jails reach dependency layers under it by path"
            }
        }
        return nil
    }

    /// Where install steps mount their scratch tmpfs.
    public var scratchDirectory: String { directory + "/.scratch" }

    /// The sealed layer's directory.
    public func path(of key: String) -> String { directory + "/" + key }

    /// A staging directory for a layer being sealed, on the same file system as its final path.
    public func stagingPath(for key: String) -> String { directory + "/.staging-\(key)-\(UUID().uuidString)" }

    /// The layer `key`, installed by `install` unless it is here or being installed already
    /// (then this waits for that install). `install` must leave the sealed layer at `path(of:)`.
    public func acquire(key: String, install: @escaping @Sendable () async -> InstallResult) async -> LayerAcquisition {
        while true {
            enum Step { case hit(UInt64), join(Task<InstallResult, Never>), lead(Task<InstallResult, Never>) }
            let step: Step = state.withLock { current in
                if var entry = current.ready[key] {
                    entry.users += 1
                    entry.lastUsed = Date()
                    current.ready[key] = entry
                    return .hit(entry.bytes)
                }
                if let running = current.installing[key] { return .join(running) }
                // The install records its result itself, before anyone waiting on it wakes; the
                // layer starts with one user, the attempt that installed it.
                let task = Task { [self] in
                    let result = await install()
                    state.withLock { state in
                        state.installing.removeValue(forKey: key)
                        if let bytes = result.layerBytes { state.ready[key] = Entry(bytes: bytes, lastUsed: Date(), users: 1) }
                    }
                    return result
                }
                current.installing[key] = task
                return .lead(task)
            }
            switch step {
            case .hit(let bytes):
                touch(key)
                return .ready(LayerLease(key: key, path: path(of: key), cache: self), DependencyReport(key: key, source: .cached, layerBytes: bytes))
            case .join(let task):
                let result = await task.value
                if result.layerBytes == nil { return .failed(result.report) }
                continue  // installed: take it as a hit (or install again if it was evicted meanwhile)
            case .lead(let task):
                let result = await task.value
                guard result.layerBytes != nil else { return .failed(result.report) }
                let lease = LayerLease(key: key, path: path(of: key), cache: self)
                evict()
                return .ready(lease, result.report)
            }
        }
    }

    func release(_ key: String) {
        state.withLock { state in
            if var entry = state.ready[key] {
                entry.users = max(0, entry.users - 1)
                state.ready[key] = entry
            }
        }
        evict()
    }

    /// Every layer here: key, bytes, last use and attempts using it now.
    public func summaries() -> [LayerSummary] {
        state.withLock { state in
            state.ready.map { LayerSummary(key: $0.key, bytes: $0.value.bytes, lastUsed: $0.value.lastUsed, users: $0.value.users) }
        }.sorted { $0.lastUsed > $1.lastUsed }
    }

    public var totalBytes: UInt64 { state.withLock { $0.ready.values.reduce(0) { $0 + $1.bytes } } }

    /// Removes a layer no attempt uses (the next task that needs it installs it again).
    public func remove(_ key: String) -> LayerRemoval {
        let outcome: LayerRemoval = state.withLock { state in
            guard let entry = state.ready[key] else { return .notFound }
            guard entry.users == 0 else { return .inUse }
            state.ready.removeValue(forKey: key)
            return .removed
        }
        if outcome == .removed { discard(key) }
        return outcome
    }

    /// Least recently used first, unused layers go until the total is under the cap.
    private func evict() {
        let victims: [String] = state.withLock { state in
            var total = state.ready.values.reduce(0) { $0 + $1.bytes }
            guard total > capBytes else { return [] }
            var out: [String] = []
            for (key, entry) in state.ready.filter({ $0.value.users == 0 }).sorted(by: { $0.value.lastUsed < $1.value.lastUsed }) {
                guard total > capBytes else { break }
                state.ready.removeValue(forKey: key)
                total -= entry.bytes
                out.append(key)
            }
            return out
        }
        for key in victims {
            logger.info("dependency layer evicted", metadata: ["key": "\(key)"])
            discard(key)
        }
    }

    /// Renames the layer out of the way at once (a new install of the key may follow), then
    /// deletes it on another thread (a large tree takes a while; a restart removes what is left).
    private func discard(_ key: String) {
        willRemove(path(of: key))
        let trash = directory + "/.trash-\(key)-\(UUID().uuidString)"
        guard rename(path(of: key), trash) == 0 else {
            LayerTree.remove(path(of: key))
            return
        }
        DispatchQueue.global(qos: .utility).async { LayerTree.remove(trash) }
    }

    /// The directory's mtime records the last use, so it survives a restart.
    private func touch(_ key: String) {
        utimensat(AT_FDCWD, path(of: key), nil, 0)
    }
}
