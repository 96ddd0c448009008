import ArgumentParser
import EdgyPolicy
import Foundation

/// `edgy policy check FILE|DIR…`: validates policy files; exit status 1 on any error.
public struct PolicyCheckCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate policy files; print errors and warnings as FILE:LINE: KEY: MESSAGE.",
        discussion: "A directory checks every *.toml in it, with extends resolved among them."
    )

    @Argument(help: "Policy files or directories of policy files.")
    public var paths: [String]

    public init() {}

    public func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one policy file or directory") }
    }

    public func run() async throws {
        let report = Self.check(paths: paths)
        for diagnostic in report.diagnostics {
            FileHandle.standardError.write(Data("\(diagnostic)\n".utf8))
        }
        for line in report.ok { print(line) }
        if report.failed { throw ExitCode.failure }
    }

    /// What `check` found: one "ok NAME (digest)" line per good policy, every diagnostic.
    public struct Report: Sendable {
        public var ok: [String] = []
        public var diagnostics: [PolicyDiagnostic] = []
        public var failed: Bool { diagnostics.contains { $0.severity == .error } }
    }

    /// Checks files and directories; the logic of `run()`, without printing.
    public static func check(paths: [String]) -> Report {
        var report = Report()
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                let (policies, diagnostics) = PolicyDirectory(path: path).loadAll()
                report.diagnostics += diagnostics
                for name in policies.keys.sorted() {
                    report.ok.append("ok \(name) (\(policies[name]!.digest))")
                }
            } else {
                do {
                    let loaded = try PolicyLoader.load(file: path)
                    report.diagnostics += loaded.warnings
                    report.ok.append("ok \(loaded.policy.name) (\(loaded.digest))")
                } catch {
                    report.diagnostics += error.diagnostics
                }
            }
        }
        var seen: Set<PolicyDiagnostic> = []
        report.diagnostics = report.diagnostics.filter { seen.insert($0).inserted }
        return report
    }
}
