@testable import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// The pool keeps a bounded set of shapes: the least recently used goes (its parked jails torn
/// down), and tasks that override limits do not add shapes of their own.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct PoolBoundsTests {
    static func pooled() throws -> JailSupervisor {
        try JailSupervisor(host: JailHostConfiguration(poolSize: 1), cgroups: TestSupport.sharedCgroups())
    }

    /// Shape `i`: its own hostname, so its own filesystem plan.
    static func policy(_ i: Int) -> Policy {
        TestSupport.policy(["/bin/hostname"]) { $0.run.hostname = "shape\(i)" }
    }

    /// Which of the numbered shapes are warm, least recently used first.
    static func warm(_ supervisor: JailSupervisor) -> [Int] {
        let shapes = supervisor.core.pool?.warmShapes ?? []
        return shapes.compactMap { shape in
            (0..<32).first { i in
                let needle = Array("shape\(i)\0".utf8)
                return shape.filesystem.indices.contains { start in
                    start + needle.count <= shape.filesystem.count && Array(shape.filesystem[start..<start + needle.count]) == needle
                }
            }
        }
    }

    static func run(_ supervisor: JailSupervisor, _ i: Int) async throws {
        let report = await supervisor.run(JailRequest(policy: policy(i)))
        #expect(report.stdoutText == "shape\(i)\n", "\(report.stdoutText) \(report.stderrText)")
        #expect(await supervisor.waitUntilPoolSettled(timeoutMs: 15_000))
    }

    @Test func aNewShapeEvictsTheLeastRecentlyUsedAndItsParkedJails() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        for i in 0..<8 { try await Self.run(pooled, i) }
        #expect(Self.warm(pooled) == Array(0..<8))
        #expect(pooled.parkedJails == 8)
        // Shape 0 used again: now 1 is the least recently used, and the ninth shape evicts it.
        try await Self.run(pooled, 0)
        try await Self.run(pooled, 8)
        #expect(Self.warm(pooled) == [2, 3, 4, 5, 6, 7, 0, 8])
        #expect(pooled.warmShapes == 8)
        #expect(pooled.parkedJails == 8)
        // The evicted shape's parked jail is gone (killed and reaped), not only forgotten.
        #expect(PoolTests.ourChildren().count == 8, "\(PoolTests.ourChildren())")
        // And shape 1 still runs, on demand, and becomes warm again.
        try await Self.run(pooled, 1)
        #expect(Self.warm(pooled) == [3, 4, 5, 6, 7, 0, 8, 1])
        #expect(PoolTests.ourChildren().count == 8, "\(PoolTests.ourChildren())")
    }

    @Test func limitOverridesDoNotAddShapes() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let base = Self.policy(0)
        let first = await pooled.run(JailRequest(policy: base, policyDigest: base.digest))
        #expect(first.stdoutText == "shape0\n")
        #expect(await pooled.waitUntilPoolSettled(timeoutMs: 15_000))
        #expect(pooled.warmShapes == 1)
        // Twenty tasks, each tightening memory and tmp differently: twenty shapes, none kept warm.
        for n in 0..<20 {
            var tightened = base
            tightened.limits = try base.limits.applying(LimitOverrides(memoryMib: 200 - n, tmpMib: 60 - n))
            let report = await pooled.run(JailRequest(policy: tightened, policyDigest: base.digest, limitsOverridden: true))
            #expect(report.outcome == .exited && report.stdoutText == "shape0\n", "\(report.stderrText)")
        }
        #expect(await pooled.waitUntilPoolSettled(timeoutMs: 15_000))
        #expect(Self.warm(pooled) == [0])
        #expect(pooled.parkedJails == 1)
        #expect(PoolTests.ourChildren().count == 1, "\(PoolTests.ourChildren())")
    }

    /// A worker's extra mount (a dependency layer) is bound read-only where asked; jails parked with
    /// it are torn down when the directory is about to go (the cache evicts the layer).
    @Test func extraMountsAreReadOnlyAndTheirParkedJailsAreForgotten() async throws {
        let pooled = try Self.pooled()
        defer { pooled.shutdown() }
        let directory = "/tmp/edgy-extra-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "layer\n".write(toFile: directory + "/file", atomically: true, encoding: .utf8)
        try #require(chmod(directory + "/file", 0o644) == 0)
        var request = JailRequest(policy: TestSupport.policy(["/bin/sh", "-c", "cat /deps/file; echo x > /deps/file || echo refused; touch /deps/new || echo refused"]))
        request.extraMounts = [JailMount(source: directory, destination: "/deps")]
        let report = await pooled.run(request)
        #expect(report.stdoutText == "layer\nrefused\nrefused\n", "\(report.stdoutText) \(report.stderrText)")
        #expect(try String(contentsOfFile: directory + "/file", encoding: .utf8) == "layer\n")
        #expect(await pooled.waitUntilPoolSettled(timeoutMs: 15_000))
        #expect(pooled.warmShapes == 1 && pooled.parkedJails == 1)
        // The next one takes the parked jail.
        #expect(await pooled.run(request).stdoutText == "layer\nrefused\nrefused\n")
        #expect(await pooled.waitUntilPoolSettled(timeoutMs: 15_000))
        pooled.forgetParkedJails(mounting: "/elsewhere")
        #expect(pooled.warmShapes == 1 && pooled.parkedJails == 1)
        pooled.forgetParkedJails(mounting: directory)
        #expect(await pooled.waitUntilPoolSettled(timeoutMs: 15_000))
        #expect(pooled.warmShapes == 0)
        #expect(pooled.parkedJails == 0)
        #expect(PoolTests.ourChildren().isEmpty, "\(PoolTests.ourChildren())")
    }
}
