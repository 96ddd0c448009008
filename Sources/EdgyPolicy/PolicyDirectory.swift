import Foundation

/// A directory of policy files (`*.toml`), each named by its file name.
public struct PolicyDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// The policy names found in the directory, sorted.
    public func names() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return entries.filter { $0.hasSuffix(".toml") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// Loads every policy; a file with errors is left out and its errors reported.
    /// - Returns: the loaded policies by name, and every error and warning (deduplicated: a
    ///   parent's problems are reported once even when several files extend it).
    public func loadAll() -> (policies: [String: LoadedPolicy], diagnostics: [PolicyDiagnostic]) {
        var policies: [String: LoadedPolicy] = [:]
        var diagnostics: [PolicyDiagnostic] = []
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return ([:], [PolicyDiagnostic(file: path, message: "not a directory of policy files")])
        }
        for name in names() {
            do {
                let loaded = try PolicyLoader.load(name: name, directory: path)
                policies[name] = loaded
                diagnostics += loaded.warnings
            } catch {
                diagnostics += error.diagnostics
            }
        }
        var seen: Set<PolicyDiagnostic> = []
        return (policies, diagnostics.filter { seen.insert($0).inserted })
    }
}
