import EdgyLayers
import EdgyModel
import Foundation
import Glibc
import Logging
import Synchronization
import Testing

/// The cache without jails: installs are closures that write a directory.
struct LayerCacheTests {
    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "edgy-cache-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// An install that seals `bytes` bytes at the key's path.
    func install(_ cache: LayerCache, _ key: String, bytes: Int, count: Counter? = nil) -> @Sendable () async -> InstallResult {
        { [cache] in
            count?.add()
            try? await Task.sleep(for: .milliseconds(50))
            let path = cache.path(of: key)
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: path + "/data", contents: Data(count: bytes))
            return InstallResult(report: DependencyReport(key: key, source: .installed), layerBytes: UInt64(bytes))
        }
    }

    @Test func aParentOthersCannotSearchIsNamed() throws {
        let root = try directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try #require(chmod(root, 0o700) == 0)
        #expect(LayerCache.unreachable(root + "/state/layers/key")?.contains(root) == true)
        try #require(chmod(root, 0o711) == 0)
        #expect(LayerCache.unreachable(root + "/state/layers/key") == nil)
    }

    @Test func concurrentAcquisitionsOfOneKeyInstallOnce() async throws {
        let root = try directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = try LayerCache(directory: root, capBytes: 1 << 20, logger: Logger(label: "test"))
        let key = String(repeating: "a", count: 64)
        let installs = Counter()
        let install = self.install(cache, key, bytes: 100, count: installs)
        let sources = await withTaskGroup(of: DependencyReport.Source?.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    guard case .ready(let lease, let report) = await cache.acquire(key: key, install: install) else { return nil }
                    lease.release()
                    return report.source
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(installs.value == 1)
        #expect(sources.filter { $0 == .installed }.count == 1 && sources.filter { $0 == .cached }.count == 7, "\(sources)")
        #expect(cache.summaries().map(\.users) == [0])
    }

    @Test func removalSparesLayersInUseAndForgetsTheRest() async throws {
        let root = try directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let announced = Counter()
        let cache = try LayerCache(directory: root, capBytes: 1 << 20, logger: Logger(label: "test")) { _ in announced.add() }
        let key = String(repeating: "b", count: 64)
        guard case .ready(let lease, _) = await cache.acquire(key: key, install: install(cache, key, bytes: 10)) else {
            Issue.record("no layer"); return
        }
        #expect(cache.remove(key) == .inUse)
        #expect(announced.value == 0)
        lease.release()
        lease.release()  // idempotent
        #expect(cache.summaries().first?.users == 0)
        #expect(cache.remove(key) == .removed)
        #expect(announced.value == 1, "parked jails are told before the layer goes")
        #expect(!FileManager.default.fileExists(atPath: cache.path(of: key)))
        #expect(cache.remove(key) == .notFound)
    }

    @Test func aFailedInstallIsNotCachedAndItsWaitersGetTheFailure() async throws {
        let root = try directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = try LayerCache(directory: root, capBytes: 1 << 20, logger: Logger(label: "test"))
        let key = String(repeating: "c", count: 64)
        let attempts = Counter()
        let failing: @Sendable () async -> InstallResult = {
            attempts.add()
            try? await Task.sleep(for: .milliseconds(50))
            return InstallResult(report: DependencyReport(key: key, source: .failed, error: "no", retryable: true), layerBytes: nil)
        }
        let results = await withTaskGroup(of: Bool?.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    guard case .failed(let report) = await cache.acquire(key: key, install: failing) else { return nil }
                    return report.retryable == true
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results == [true, true, true])
        #expect(attempts.value == 1)
        #expect(cache.summaries().isEmpty)
        // The next acquisition tries again.
        _ = await cache.acquire(key: key, install: failing)
        #expect(attempts.value == 2)
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
