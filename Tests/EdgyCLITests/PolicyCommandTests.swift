import ArgumentParser
import EdgyCLI
import EdgyModel
import EdgyPolicy
import Foundation
import Testing

@Suite struct PolicyCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let policies = root.appendingPathComponent("policies").path

    func temporaryDirectory(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return dir.path
    }

    @Test func parsesSubcommands() throws {
        let check = try PolicyCommand.parseAsRoot(["check", "a.toml", "dir"])
        #expect((check as? PolicyCheckCommand)?.paths == ["a.toml", "dir"])
        let show = try PolicyCommand.parseAsRoot(["show", "python", "--policies", "/etc/edgy"])
        #expect((show as? PolicyShowCommand)?.policy == "python")
        #expect((show as? PolicyShowCommand)?.options.policies == "/etc/edgy")
        let showDefault = try PolicyCommand.parseAsRoot(["show", "python"])
        #expect((showDefault as? PolicyShowCommand)?.options.policies == "policies")
        #expect(throws: (any Error).self) { try PolicyCommand.parseAsRoot(["check"]) }
    }

    @Test func checkShippedDirectory() {
        let report = PolicyCheckCommand.check(paths: [Self.policies])
        #expect(!report.failed, "\(report.diagnostics)")
        #expect(report.ok.count == 7)
        #expect(report.ok.contains { $0.hasPrefix("ok python (") && $0.count == "ok python ()".count + 64 })
    }

    @Test func checkReportsErrorsAndWarnings() throws {
        let dir = try temporaryDirectory([
            "bad.toml": "[limits]\nmemroy_mib = 5\n",
            "warn.toml": "[seccomp]\nallow = [\"@default\", \"ptrace\"]\n",
        ])
        let report = PolicyCheckCommand.check(paths: [dir])
        #expect(report.failed)
        #expect(report.ok == ["ok warn (\(try PolicyLoader.load(name: "warn", directory: dir).digest))"])
        let lines = report.diagnostics.map(\.description)
        #expect(lines.contains("\(dir)/bad.toml:2: [limits] memroy_mib: unknown key `memroy_mib` in [limits] (did you mean `memory_mib`?)"))
        #expect(lines.contains { $0.hasPrefix("\(dir)/warn.toml:2: warning: [seccomp] allow:") })
        let single = PolicyCheckCommand.check(paths: ["\(dir)/warn.toml"])
        #expect(!single.failed)
        #expect(single.diagnostics.count == 1)
    }

    @Test func checkFileResolvesExtendsInItsDirectory() {
        let report = PolicyCheckCommand.check(paths: ["\(Self.policies)/node.toml"])
        #expect(!report.failed)
        #expect(report.ok.first?.hasPrefix("ok node (") == true)
    }

    @Test func showByNameAndByFile() throws {
        let byName = try PolicyShowCommand.load("python", directory: Self.policies)
        let byFile = try PolicyShowCommand.load("\(Self.policies)/python.toml", directory: "unused")
        #expect(byName.policy == byFile.policy)
        let text = PolicyShowCommand.render(byName)
        #expect(text.contains("command = [\"/usr/bin/python3\", \"{entry}\"]"))
        #expect(text.hasSuffix("# digest: \(byName.digest)\n"))
        let reparsed = try PolicyLoader.parse(text, name: "python", file: "python.toml", directory: Self.policies)
        #expect(reparsed.policy.digest == byName.digest)
    }

    /// `show` prints a policy that needs no parent: every shipped one loads from the printed text
    /// alone, with the digest `show` printed.
    @Test func showOutputLoadsOnItsOwnWithTheSameDigest() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.policies)
            .filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }
        #expect(names.count >= 2)
        for name in names {
            let loaded = try PolicyShowCommand.load(name, directory: Self.policies)
            let text = PolicyShowCommand.render(loaded)
            let alone = try PolicyLoader.parse(text, name: name, file: "shown.toml", directory: nil)
            #expect(alone.digest == loaded.digest, "\(name)")
            #expect(text.contains("# digest: \(alone.digest)\n"), "\(name)")
        }
    }

    @Test func checkRefusesMountsUnderTmpOrTheWorkdirWithFileAndLine() throws {
        let dir = try temporaryDirectory([
            "bad.toml": "[run]\nworkdir = \"/job\"\n\n[[mounts]]\nsource = \"/usr\"\ndestination = \"/job/usr\"\n",
        ])
        let report = PolicyCheckCommand.check(paths: ["\(dir)/bad.toml"])
        #expect(report.failed)
        let shown = report.diagnostics.map(\.description)
        #expect(shown.contains { $0.contains("bad.toml:6:") && $0.contains("/job/usr is under /job") }, "\(shown)")
    }

    @Test func showMissingPolicyFails() async throws {
        let command = try #require(try PolicyCommand.parseAsRoot(["show", "nope", "--policies", Self.policies]) as? PolicyShowCommand)
        await #expect(throws: ExitCode.self) { try await command.run() }
    }
}
