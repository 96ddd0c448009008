import EdgyPolicy
@testable import EdgySeccomp
import Foundation
import Glibc
import Testing

/// The files `edgy run` keeps compiled filters in: a file is used only when it is whole, written
/// for the same table by this build, and writable by nobody but its owner; anything else is a miss.
@Suite final class DiskCacheTests {
    let directory: String
    let cache: SeccompDiskCache
    let table = Policy.Seccomp(deny: ["getpid"])

    /// Two levels that do not exist yet: the cache makes its own directory and one parent.
    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-seccomp-\(UUID().uuidString)/seccomp").path
        cache = SeccompDiskCache(directory: directory)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
    }

    var file: String { cache.path(for: SeccompDiskCache.key(for: table)!) }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    @Test func aStoredProgramIsLoadedBackByAnotherInstanceAsCompiled() throws {
        let compiled = try SeccompCompiler.compile(table)
        #expect(cache.load(table) == nil)
        cache.store(compiled, for: table)
        #expect(SeccompDiskCache(directory: directory).load(table) == compiled)
        // Private: the directory and the file are the owner's alone.
        var info = stat()
        #expect(stat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // The temporary file was renamed away.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [(file as NSString).lastPathComponent])
    }

    @Test func everyFieldOfTheTableIsInTheKey() throws {
        let tables = [
            Policy.Seccomp(), Policy.Seccomp(defaultAction: .errno(1, "EPERM")), Policy.Seccomp(defaultAction: .errno(38, "ENOSYS")),
            Policy.Seccomp(defaultAction: .log), Policy.Seccomp(allow: ["@default", "ptrace"]), Policy.Seccomp(deny: ["getpid"]),
            Policy.Seccomp(socketFamilies: ["unix"]), Policy.Seccomp(ioctlDeny: []), Policy.Seccomp(allowNamespaceClone: true),
            // Moving a name between lists is a different table, not the same text.
            Policy.Seccomp(allow: ["@default"], deny: [], socketFamilies: ["unix", "inet"], ioctlDeny: ["inet6"]),
            Policy.Seccomp(allow: ["@default"], deny: [], socketFamilies: ["unix"], ioctlDeny: ["inet", "inet6"]),
        ]
        let keys = tables.map { SeccompDiskCache.key(for: $0)! }
        #expect(Set(keys).count == tables.count)
        #expect(SeccompDiskCache.key(for: Policy.Seccomp()) == SeccompDiskCache.key(for: Policy.Seccomp()))

        cache.store(try SeccompCompiler.compile(table), for: table)
        #expect(cache.load(Policy.Seccomp()) == nil)
    }

    /// One bit flipped anywhere, a truncation, a file for another key or an empty program: each is a miss.
    @Test func damagedFilesAreMisses() throws {
        let compiled = try SeccompCompiler.compile(table)
        cache.store(compiled, for: table)
        let good = try bytes(file)
        var damaged: [[UInt8]] = [[], Array(good.prefix(SeccompDiskCache.headerSize)), Array(good.dropLast(8)), good + [0]]
        for index in [0, 9, 41, 50, SeccompDiskCache.headerSize + 3, good.count - 1] {
            var copy = good
            copy[index] ^= 0x04
            damaged.append(copy)
        }
        let otherKey = SeccompDiskCache.encode(compiled, key: SeccompDiskCache.key(for: Policy.Seccomp())!)
        damaged.append(otherKey)
        for bytes in damaged {
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            chmod(file, 0o600)
            #expect(cache.load(table) == nil, "\(bytes.count) bytes")
        }
        try Data(good).write(to: URL(fileURLWithPath: file))
        #expect(cache.load(table) == compiled)
    }

    /// A file or directory someone else may write to, or a link, is never read: its program would
    /// become a jail's filter.
    @Test func filesOthersMayWriteAndLinksAreNotUsed() throws {
        let compiled = try SeccompCompiler.compile(table)
        cache.store(compiled, for: table)
        chmod(file, 0o620)
        #expect(cache.load(table) == nil)
        chmod(file, 0o600)
        #expect(cache.load(table) == compiled)

        chmod(directory, 0o777)
        #expect(cache.load(table) == nil)
        chmod(directory, 0o700)

        let elsewhere = directory + ".real"
        try FileManager.default.moveItem(atPath: file, toPath: elsewhere)
        defer { unlink(elsewhere) }
        #expect(symlink(elsewhere, file) == 0)
        #expect(cache.load(table) == nil)
        unlink(file)

        let linkedDirectory = directory + ".link"
        #expect(symlink(directory, linkedDirectory) == 0)
        defer { unlink(linkedDirectory) }
        cache.store(compiled, for: table)
        #expect(SeccompDiskCache(directory: linkedDirectory).load(table) == nil)
    }

    /// Through `SeccompCache`: a miss compiles and keeps; a damaged file is compiled again and
    /// replaced; a table the jail cannot start under is refused and never kept.
    @Test func theProcessCacheReadsKeepsAndRepairs() throws {
        let first = SeccompCache()
        first.keepOnDisk(cache)
        let compiled = try first.program(for: table)
        #expect(cache.load(table) == compiled)

        var bytes = try bytes(file)
        bytes[bytes.count - 2] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let second = SeccompCache()
        second.keepOnDisk(cache)
        #expect(try second.program(for: table) == compiled)
        #expect(cache.load(table) == compiled)

        let unstartable = Policy.Seccomp(deny: ["execve"])
        #expect(throws: SeccompError.jailStartDenied("execve")) { try second.program(for: unstartable) }
        #expect(cache.load(unstartable) == nil)
    }
}
