import EdgyPolicy
import Foundation
import Testing

@Suite struct DocsCoverageTests {
    static let keys: [String] = PolicyLoader.knownKeys.flatMap { table, keys in
        keys.map { table.isEmpty ? $0 : "\(table).\($0)" }
    }.sorted()

    @Test(arguments: keys)
    func documented(key: String) throws {
        let docs = try String(contentsOf: repoRoot.appendingPathComponent("docs/policies.md"), encoding: .utf8)
        let parts = key.split(separator: ".")
        if parts.count == 2 {
            let table = String(parts[0])
            let header = ["mounts", "tmpfs"].contains(table) ? "[[\(table)]]" : "[\(table)]"
            #expect(docs.contains("`\(header)`"), "docs/policies.md does not document table \(header)")
        }
        #expect(docs.contains("`\(parts.last!)`"), "docs/policies.md does not document `\(key)`")
    }
}
