import ArgumentParser
import EdgyCLI
import EdgyModel
import Foundation
import Glibc
import Testing

/// `edgy token` offline, against a state directory (the bootstrap path of a new host); the same
/// commands against a real server are in `EdgyDaemonTests`.
@Suite struct TokenCommandTests {
    func stateDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-state-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // An empty file is an empty SQLite database; the store migrates it on open, as edgyd would.
        #expect(FileManager.default.createFile(atPath: dir + "/edgy.sqlite", contents: nil))
        return dir
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func parsesAndValidates() throws {
        #expect(throws: (any Error).self) { try EdgyCommand.parseAsRoot(["token", "list"]) }
        #expect(throws: (any Error).self) { try EdgyCommand.parseAsRoot(["token", "list", "--server", "http://x", "--state-dir", "/tmp"]) }
        #expect(throws: (any Error).self) {
            try EdgyCommand.parseAsRoot(["token", "create", "--server", "http://x", "--token", "t", "--name", "n", "--role", "root", "--tenant", "a"])
        }
        #expect(throws: (any Error).self) {
            try EdgyCommand.parseAsRoot(["token", "create", "--server", "http://x", "--token", "t", "--name", "n", "--role", "reader", "--tenant", "a", "--expires-in", "soon"])
        }
        #expect(throws: (any Error).self) { try EdgyCommand.parseAsRoot(["token", "revoke", "--server", "http://x", "--token", "t", "not-a-uuid"]) }
        let create = try EdgyCommand.parseAsRoot([
            "token", "create", "--server", "http://x", "--token", "t", "--name", "n", "--role", "submitter", "--tenant", "a",
            "--policy", "python", "--policy", "node", "--expires-in", "30d",
        ])
        #expect((create as? TokenCreateCommand)?.policies == ["python", "node"])
    }

    @Test func createListRevokeOffline() throws {
        let dir = try stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let created = try RunCommandTests.edgy([
            "token", "create", "--state-dir", dir, "--name", "ci", "--role", "submitter", "--tenant", "acme", "--policy", "python", "--expires-in", "30d",
        ])
        #expect(created.status == 0, "\(created.stderr)")
        let secret = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("edgy_") && !secret.contains("\n"))
        #expect(created.stderr.contains("shown only this once"))

        let json = try RunCommandTests.edgy(["token", "create", "--state-dir", dir, "--name", "dash", "--role", "reader", "--tenant", "globex", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let dash = Self.object(json.stdout)
        #expect((dash["token"] as? String)?.hasPrefix("edgy_") == true)
        #expect(dash["tenant"] as? String == "globex")

        let list = try RunCommandTests.edgy(["token", "list", "--state-dir", dir, "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(!list.stdout.contains(secret))
        let tokens = (try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(tokens.count == 2)
        let ci = try #require(tokens.first { $0["name"] as? String == "ci" })
        #expect(ci["policies"] as? [String] == ["python"])
        #expect(ci["state"] as? String == "active")
        #expect(ci["expires_at"] is String)
        #expect(ci["token"] == nil)
        let id = try #require(ci["id"] as? String)

        let globex = try RunCommandTests.edgy(["token", "list", "--state-dir", dir, "--tenant", "globex"])
        #expect(globex.stdout.contains("dash") && !globex.stdout.contains(" ci "))
        #expect(globex.stdout.hasPrefix("ID"))

        let revoke = try RunCommandTests.edgy(["token", "revoke", "--state-dir", dir, id])
        #expect(revoke.status == 0, "\(revoke.stderr)")
        let after = try RunCommandTests.edgy(["token", "list", "--state-dir", dir, "--json"])
        let revoked = ((try? JSONSerialization.jsonObject(with: Data(after.stdout.utf8))) as? [[String: Any]] ?? []).first { $0["id"] as? String == id }
        #expect(revoked?["state"] as? String == "revoked")
        #expect(try RunCommandTests.edgy(["token", "revoke", "--state-dir", dir, UUID().uuidString]).status != 0)

        // Offline actions are audited too, without the secret, in a file only root reads.
        let audit = try String(contentsOfFile: dir + "/audit.log", encoding: .utf8)
        let actions = audit.split(separator: "\n").map { Self.object(String($0))["action"] as? String ?? "?" }
        #expect(actions == ["token.create", "token.create", "token.list", "token.list", "token.revoke", "token.list"])
        #expect(!audit.contains(secret))
        // Through FileManager: Glibc's `stat` type is ambiguous with CoreFoundation's in this module.
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/audit.log")[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o777 } == 0o600)
    }

    @Test func refusesADirectoryWithoutAStore() throws {
        let result = try RunCommandTests.edgy(["token", "list", "--state-dir", "/nonexistent-\(UUID().uuidString)"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("edgy.sqlite"))
    }
}
