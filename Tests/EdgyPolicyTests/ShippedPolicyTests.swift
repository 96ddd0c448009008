import EdgyPolicy
import Foundation
import Testing

@Suite struct ShippedPolicyTests {
    static let names = ["base", "default", "sh", "python", "node", "c", "egress"]

    @Test(arguments: names)
    func loadsWithoutErrors(name: String) throws {
        let loaded = try PolicyLoader.load(name: name, directory: shippedPolicies)
        #expect(!loaded.policy.description.isEmpty)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        // Only the egress example reaches out, and only to what it lists.
        #expect(loaded.policy.network.mode == (name == "egress" ? .egress : .none))
        #expect(loaded.policy.seccomp.deny.contains("ptrace"))
        if name != "base" {
            #expect(loaded.policy.extends == (name == "egress" ? "python" : "base"))
            #expect(loaded.policy.run.command.contains { $0.contains("{entry}") })
            #expect(loaded.policy.run.entry != nil)
        }
    }

    @Test func directoryLoadsEveryFile() {
        let (policies, diagnostics) = PolicyDirectory(path: shippedPolicies).loadAll()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(Set(policies.keys) == Set(Self.names))
    }

    @Test func languageSpecifics() throws {
        let python = try PolicyLoader.load(name: "python", directory: shippedPolicies).policy
        #expect(python.run.env["PYTHONUNBUFFERED"] == "1")
        #expect(python.run.env["PATH"] != nil, "env merges with base's key by key")
        let node = try PolicyLoader.load(name: "node", directory: shippedPolicies).policy
        #expect(node.limits.memoryMib >= 512 && node.limits.pids >= 64)
        let dflt = try PolicyLoader.load(name: "default", directory: shippedPolicies).policy
        #expect(dflt.run.allowCommandOverride && dflt.run.entry == "main.sh")
        let base = try PolicyLoader.load(name: "base", directory: shippedPolicies).policy
        #expect(base.mounts.first { $0.source == "/usr" }?.required == true)
        #expect(base.mounts.first { $0.source == "/lib64" }?.required == false)
    }

    @Test(arguments: ["default.sh", "sh.sh", "python.py", "node.js", "c.c", "task.js"])
    func samplesExist(file: String) {
        #expect(FileManager.default.fileExists(atPath: repoRoot.appendingPathComponent("sample/\(file)").path))
    }
}
