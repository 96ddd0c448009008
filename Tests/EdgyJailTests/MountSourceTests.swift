@testable import EdgyJail
import EdgyPolicy
import Foundation
import Glibc
import Testing

/// Filesystem plans learn what a policy's mount sources are from `MountSourceCache`: what the
/// host has, no older than the cache's age limit; and are kept per policy for as long
/// (`FilesystemPlanCache`).
struct MountSourceTests {
    private func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "edgy-mount-source-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func inspectSaysWhatIsThere() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8)))
        symlink("file", dir + "/link")
        symlink("nowhere", dir + "/dangling")

        let directory = MountSource.inspect(dir)
        #expect(directory.exists && directory.isDirectory && directory.symlinkTarget == nil)
        let file = MountSource.inspect(dir + "/file")
        #expect(file.exists && !file.isDirectory)
        #expect(MountSource.inspect(dir + "/link").symlinkTarget == "file")
        #expect(MountSource.inspect(dir + "/dangling").symlinkTarget == "nowhere")
        let missing = MountSource.inspect(dir + "/missing")
        #expect(!missing.exists && missing.symlinkTarget == nil)
        // The flags a mount locks are carried, as the host's mount table lists them for /proc.
        let table = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        // The last mount on /proc is the one in sight.
        let line = try #require(table.split(separator: "\n").last { $0.split(separator: " ").dropFirst().first == "/proc" })
        let options = Set(line.split(separator: " ")[3].split(separator: ","))
        let flags = MountSource.inspect("/proc").lockedFlags
        #expect(options.contains("relatime") || options.contains("noexec"))
        #expect((flags & UInt(MS_RELATIME) != 0) == options.contains("relatime"))
        #expect((flags & UInt(MS_NOEXEC) != 0) == options.contains("noexec"))
    }

    @Test func aChangedSourceIsSeenOnceItsEntryIsOld() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/source"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let cache = MountSourceCache(maxAgeNanos: 1_000_000_000)
        #expect(cache.source(path, now: 10_000_000_000).isDirectory)

        // Now a file: still a directory for the cache within its age limit, a file after it.
        rmdir(path)
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(cache.source(path, now: 10_900_000_000).isDirectory)
        let seen = cache.source(path, now: 11_000_000_000)
        #expect(seen.exists && !seen.isDirectory)
        #expect(seen == MountSource.inspect(path))
    }

    @Test func filesystemPlansAreKeptPerKeyAndRebuiltWhenOld() throws {
        let cache = FilesystemPlanCache(maxAgeNanos: 1_000_000_000)
        var builds = 0
        func plan(_ name: String, at seconds: Double) throws -> String {
            let key = FilesystemPlanCache.Key(policy: Policy(name: name), extraMounts: [], filterWhileParked: false)
            return try cache.plan(for: key, now: UInt64(seconds * 1e9)) { () throws(PlanError) in
                builds += 1
                return BuiltFilesystem(plan: FilesystemPlan(), blob: [], workdir: "/\(name)/\(builds)")
            }.workdir
        }
        #expect(try plan("a", at: 10) == "/a/1")
        #expect(try plan("a", at: 10.9) == "/a/1")
        #expect(try plan("b", at: 10.9) == "/b/2")
        #expect(try plan("a", at: 11.0) == "/a/3")
        // Sixteen policies are kept; the least recently used goes first.
        for i in 0..<15 { _ = try plan("p\(i)", at: 11.1) }
        #expect(builds == 18)
        #expect(try plan("a", at: 11.2) == "/a/3")
        _ = try plan("p15", at: 11.2)
        #expect(try plan("b", at: 11.3) == "/b/20")

        // A failed build is not kept.
        let key = FilesystemPlanCache.Key(policy: Policy(name: "bad"), extraMounts: [], filterWhileParked: false)
        #expect(throws: PlanError.self) { try cache.plan(for: key, now: 12_000_000_000) { () throws(PlanError) in throw PlanError("no") } }
        let rebuilt = try cache.plan(for: key, now: 12_000_000_001) { () throws(PlanError) in
            BuiltFilesystem(plan: FilesystemPlan(), blob: [], workdir: "/ok")
        }
        #expect(rebuilt.workdir == "/ok")
    }
}
