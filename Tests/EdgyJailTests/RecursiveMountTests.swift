import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// `[[mounts]]` are read-only, nosuid and nodev all the way down, not only at their top.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(1)))
struct RecursiveMountTests {
    /// A host directory with a writable tmpfs (mode 1777) mounted inside it, removed after `body`.
    static func withSubmountedTree<T>(_ body: (String) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-recursive-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        defer {
            umount2(dir + "/sub", Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: dir)
        }
        guard mount("tmpfs", dir + "/sub", "tmpfs", 0, "size=1m,mode=1777") == 0 else {
            throw IsolationTests.Errno()
        }
        // Writable on the host: the jail is what must make it read-only.
        #expect(FileManager.default.createFile(atPath: dir + "/sub/host-file", contents: Data("h".utf8)))
        return try await body(dir)
    }

    @Test func aWritableSubmountOfABoundTreeIsReadOnlyInTheJail() async throws {
        try await Self.withSubmountedTree { dir in
            let report = try await TestSupport.sh(
                "cat /data/sub/host-file; echo; echo x > /data/sub/new; echo rc=$?; echo x > /data/new; echo rc=$?"
            ) { policy in
                policy.mounts.append(Policy.Mount(source: dir, destination: "/data"))
            }
            #expect(report.outcome == .exited, "\(report.outcome) \(report.stderrText)")
            #expect(report.stdoutText == "h\nrc=2\nrc=2\n", "\(report.stdoutText) \(report.stderrText)")
            let erofs = report.stderrText.components(separatedBy: "Read-only file system").count - 1
            #expect(erofs == 2, "\(report.stderrText)")
            #expect(!FileSystem.exists(dir + "/sub/new"))
        }
    }

    @Test func theSubmountIsNosuidAndNodevToo() async throws {
        try await Self.withSubmountedTree { dir in
            let report = try await TestSupport.sh("grep ' /data/sub ' /proc/self/mountinfo") { policy in
                policy.mounts.append(Policy.Mount(source: dir, destination: "/data"))
            }
            let options = report.stdoutText.split(separator: " ").dropFirst(5).first.map(String.init) ?? ""
            let flags = Set(options.split(separator: ","))
            #expect(flags.isSuperset(of: ["ro", "nosuid", "nodev"]), "\(report.stdoutText) \(report.stderrText)")
        }
    }
}
