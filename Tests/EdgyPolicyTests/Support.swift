import EdgyPolicy
import Foundation

/// The repository root, found from this file's path (Tests/EdgyPolicyTests/Support.swift).
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let shippedPolicies = repoRoot.appendingPathComponent("policies").path

/// A fresh directory holding the given `NAME.toml` files.
func policyDirectory(_ files: [String: String]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-policy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files {
        try text.write(to: dir.appendingPathComponent("\(name).toml"), atomically: true, encoding: .utf8)
    }
    return dir.path
}

/// The diagnostics of text that must fail to load.
func errors(of text: String, name: String = "t", directory: String? = nil) -> [PolicyDiagnostic] {
    do {
        _ = try PolicyLoader.parse(text, name: name, file: "policies/\(name).toml", directory: directory)
        return []
    } catch {
        return error.diagnostics
    }
}
