import EdgyPolicy
import Foundation
import Testing

/// Every key is declared once (`PolicySchema`); these tests fail when a key is missing from
/// the decoder, `extends` merging, rendering or the limit overrides.
@Suite struct PolicySchemaTests {
    /// "limits.memory_mib", "mounts.source", "description": every key the decoder accepts.
    static let dottedKeys: [String] = PolicyVocabulary.knownKeys.flatMap { table, keys in
        keys.map { table.isEmpty ? $0 : "\(table).\($0)" }
    }.sorted()

    /// The key's line in `RenderDigestTests.full`, under its own table's header.
    static func setsKey(_ text: String, table: String, key: String) -> Bool {
        var current = ""
        for line in text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("[") {
                current = line.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            } else if current == table, line.hasPrefix("\(key) =") || line.hasPrefix("\(key)=") {
                return true
            }
        }
        return false
    }

    /// The every-key policy sets every key the decoder knows (but `extends`, tested in ExtendsTests).
    @Test(arguments: dottedKeys.filter { $0 != "extends" })
    func theFullPolicySetsEveryKey(key: String) {
        let parts = key.split(separator: ".").map(String.init)
        let (table, name) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts[0])
        #expect(Self.setsKey(RenderDigestTests.full, table: table, key: name), "RenderDigestTests.full does not set \(key)")
    }

    /// Every key set to a value other than its default reads back after rendering: the decoder
    /// and the renderer know each one.
    @Test func everyKeyDiffersFromItsDefaultAndSurvivesRendering() throws {
        let policy = try PolicyLoader.parse(RenderDigestTests.full, name: "t", file: "t.toml", directory: nil).policy
        let defaults = Policy(name: "t")
        #expect(policy.limits != defaults.limits && policy.run != defaults.run && policy.seccomp != defaults.seccomp)
        for key in LimitOverrides.keys {
            // Each limit on its own differs from the default, so rendering cannot drop one unseen.
            let override = try LimitOverrides.decodeLimit(key, from: policy.limits)
            let byDefault = try LimitOverrides.decodeLimit(key, from: defaults.limits)
            #expect(override != byDefault, "limit \(key) keeps its default in the every-key policy")
        }
        let again = try PolicyLoader.parse(policy.renderTOML(), name: "t", file: "t.toml", directory: nil).policy
        #expect(again == policy, "\(policy.renderTOML())")
    }

    /// A child that sets every key over a parent gets every value of its own: merging knows each key.
    @Test func extendsMergesEveryKey() throws {
        let parent = """
            description = "parent"
            [run]
            env = { PARENT_ONLY = "p" }
            [limits]
            memory_mib = 999
            """
        let directory = try policyDirectory(["parent": parent, "child": "extends = \"parent\"\n" + RenderDigestTests.full])
        let merged = try PolicyLoader.load(name: "child", directory: directory).policy
        var expected = try PolicyLoader.parse(RenderDigestTests.full, name: "child", file: "child.toml", directory: nil).policy
        expected.extends = "parent"
        expected.run.env["PARENT_ONLY"] = "p"  // env merges variable by variable
        #expect(merged == expected)
    }

    /// The API's limit overrides: the JSON field names are the schema's overridable keys, and a
    /// policy's limits copied into overrides and applied back are unchanged.
    @Test func limitOverridesCoverEveryLimit() throws {
        #expect(LimitOverrides.codingKeys.sorted() == LimitOverrides.keys.sorted())
        let byKind = [LimitKind.wholeNumber, .number, .choice].flatMap { LimitOverrides.keys(of: $0) }
        #expect(byKind.sorted() == LimitOverrides.keys.sorted())
        #expect(LimitOverrides.keys(of: .number).sorted() == ["cpu_time_s", "wall_time_s"])
        #expect(Set(LimitOverrides.keys) == Set(PolicyVocabulary.knownKeys["limits"] ?? []))
        let policy = try PolicyLoader.parse(RenderDigestTests.full, name: "t", file: "t.toml", directory: nil).policy
        let all = LimitOverrides(all: policy.limits)
        for key in LimitOverrides.keys {
            #expect(try LimitOverrides.decodeLimit(key, from: policy.limits) != nil, "LimitOverrides(all:) leaves \(key) unset")
        }
        #expect(try policy.limits.applying(all) == policy.limits)
        // Every numeric limit is checked when a task overrides it: 0 is refused, by name.
        for key in LimitOverrides.keys where key != "output_overflow" {
            let zero = try JSONDecoder().decode(LimitOverrides.self, from: Data("{\"\(key)\": 0}".utf8))
            #expect(throws: PolicyOverrideError.self, "limit \(key) is not checked") { try policy.limits.applying(zero) }
            do { _ = try policy.limits.applying(zero) } catch { #expect(error.key == key) }
        }
    }
}

extension LimitOverrides {
    /// The override field named `key` after copying `limits`, as JSON text (nil when unset).
    static func decodeLimit(_ key: String, from limits: Policy.Limits) throws -> String? {
        let data = try JSONEncoder().encode(LimitOverrides(all: limits))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return object?[key].map { "\($0)" }
    }
}
