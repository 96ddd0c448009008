import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// `[outputs]` against real jails: what a workload leaves in its working directory comes back byte
/// for byte, within the caps, and never through a symlink or a special file.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct OutputCollectionTests {
    static func policy(_ script: String, paths: [String], configure: (inout Policy.Outputs) -> Void = { _ in }) -> Policy {
        TestSupport.policy(["/bin/sh", "-c", script]) { policy in
            policy.outputs.paths = paths
            configure(&policy.outputs)
        }
    }

    static func run(_ policy: Policy, task patterns: [String]? = nil, supervisor: JailSupervisor? = nil) async throws -> AttemptReport {
        var request = JailRequest(policy: policy)
        request.outputPatterns = try patterns?.map { try OutputPattern($0) }
        return await (try supervisor ?? TestSupport.supervisor()).run(request)
    }

    static func details(_ report: AttemptReport) -> String {
        "\(report.outcome) setup=\(report.setup?.description ?? "-") stderr=\(report.stderrText) outputs=\(String(describing: report.outputs))"
    }

    @Test func aPythonWorkloadsFilesComeBackByteForByte() async throws {
        let script = """
            /usr/bin/python3 - <<'EOF'
            import os
            os.makedirs('out/deep/er', exist_ok=True)
            open('out/data.bin', 'wb').write(bytes(range(256)) * 40)
            open('out/deep/er/note.txt', 'w').write('deep\\n')
            open('plot.svg', 'w').write('<svg xmlns="http://www.w3.org/2000/svg"/>')
            open('ignored.txt', 'w').write('not asked for')
            os.makedirs('elsewhere', exist_ok=True)
            open('elsewhere/x.svg', 'w').write('nested svg is not *.svg at the top')
            os.chmod('out/data.bin', 0o600)
            EOF
            """
        let report = try await Self.run(Self.policy(script, paths: ["out/**", "*.svg"]))
        #expect(report.outcome == .exited && report.exitCode == 0, "\(Self.details(report))")
        let outputs = try #require(report.outputs, "\(Self.details(report))")
        let byPath = Dictionary(uniqueKeysWithValues: outputs.files.map { ($0.path, $0) })
        #expect(Set(byPath.keys) == ["out/data.bin", "out/deep/er/note.txt", "plot.svg"], "\(Self.details(report))")
        let expected: [String: [UInt8]] = [
            "out/data.bin": Array((0..<40).flatMap { _ in (0...255).map(UInt8.init) }),
            "out/deep/er/note.txt": Array("deep\n".utf8),
            "plot.svg": Array("<svg xmlns=\"http://www.w3.org/2000/svg\"/>".utf8),
        ]
        for (path, bytes) in expected {
            let file = try #require(byPath[path])
            #expect(file.size == bytes.count)
            #expect(file.sha256 == BlobDigest.sha256Hex(bytes))
            #expect(report.outputContents[file.sha256] == bytes, "\(path) differs")
        }
        #expect(byPath["out/data.bin"]?.mode == 0o600)
        #expect(outputs.truncated == false)
        #expect(outputs.omitted.isEmpty)
        // The bytes travel beside the report, never inside its JSON.
        let encoded = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(!encoded.contains("deep\\n") && encoded.contains("\"outputs_truncated\":false"))
    }

    @Test func symlinksAndFifosAreReportedNeverFollowedOrOpened() async throws {
        let script = """
            mkdir -p out && echo real > out/real.txt && ln -s /etc/passwd out/passwd && ln -s /etc out/etc \
            && ln -s real.txt out/alias.txt && mkfifo out/pipe && echo latin1 > "$(printf 'out/caf\\351')" && echo done
            """
        let report = try await Self.run(Self.policy(script, paths: ["out/**"]))
        #expect(report.outcome == .exited && report.exitCode == 0, "\(Self.details(report))")
        let outputs = try #require(report.outputs)
        #expect(outputs.files.map(\.path) == ["out/real.txt"], "\(Self.details(report))")
        let omitted = Dictionary(uniqueKeysWithValues: outputs.omitted.map { ($0.path, $0.reason) })
        #expect(omitted == [
            "out/passwd": .symlink, "out/etc": .symlink, "out/alias.txt": .symlink, "out/pipe": .special,
            "out/caf\u{FFFD}": .unreadable,  // not UTF-8: reported, never guessed at
        ])
        // Not a cap: nothing was left out for lack of room.
        #expect(outputs.truncated == false)
    }

    @Test func countAndByteCapsShowInTheReport() async throws {
        let five = "mkdir -p out && for i in 1 2 3 4 5; do echo $i > out/f$i; done"
        let counted = try await Self.run(Self.policy(five, paths: ["out/*"]) { $0.maxFiles = 3 })
        let byCount = try #require(counted.outputs)
        #expect(byCount.files.map(\.path) == ["out/f1", "out/f2", "out/f3"])
        #expect(byCount.omitted.map(\.reason) == [.maxFiles, .maxFiles])
        #expect(byCount.omittedCount == 2 && byCount.truncated)

        let big = "mkdir -p out && head -c 700000 /dev/zero > out/a && head -c 700000 /dev/zero > out/b && echo small > out/c"
        let sized = try await Self.run(Self.policy(big, paths: ["out/*"]) { $0.maxMib = 1 })
        let bySize = try #require(sized.outputs, "\(Self.details(sized))")
        #expect(bySize.files.map(\.path) == ["out/a", "out/c"], "\(Self.details(sized))")
        #expect(bySize.omitted == [OutputsReport.Omitted(path: "out/b", reason: .maxBytes)])
        #expect(bySize.truncated)
    }

    @Test func aTaskNarrowsThePolicysPatternsAndMayAskForNone() async throws {
        let script = "mkdir -p out && echo 1 > out/keep.csv && echo 2 > out/drop.log && echo 3 > top.csv"
        let policy = Self.policy(script, paths: ["out/**", "*.csv"])
        let narrowed = try await Self.run(policy, task: ["**/*.csv"])
        #expect(narrowed.outputs?.files.map(\.path) == ["out/keep.csv", "top.csv"])
        // A task pattern cannot widen the policy's: `**` is still only out/** and *.csv.
        let widened = try await Self.run(Self.policy("echo x > secret.txt", paths: ["out/**"]), task: ["**"])
        #expect(widened.outputs?.files.isEmpty == true)
        let none = try await Self.run(policy, task: [])
        #expect(none.outputs == nil)
    }

    @Test func parkedJailsCollectToo() async throws {
        let pooled = try JailSupervisor(host: JailHostConfiguration(poolSize: 1), cgroups: TestSupport.sharedCgroups())
        defer { pooled.shutdown() }
        let policy = Self.policy("echo run >> runs.txt", paths: ["*.txt"])
        var collected: [String] = []
        for _ in 0..<3 {
            let report = try await Self.run(policy, supervisor: pooled)
            let file = try #require(report.outputs?.files.first, "\(Self.details(report))")
            collected.append(String(decoding: report.outputContents[file.sha256] ?? [], as: UTF8.self))
            try await Task.sleep(for: .milliseconds(100))
        }
        // Each attempt has a working directory of its own: a reused one would hold earlier runs.
        #expect(collected == ["run\n", "run\n", "run\n"])
    }
}
