import EdgyTestSupport
import Foundation
import Testing

/// The module graph as Package.swift declares it and as the sources use it must agree: a
/// declared edge nothing imports hides what a module really needs, and an import that only works
/// through another module's edge breaks when that edge goes.
@Suite(.timeLimit(.minutes(1)))
struct ModuleGraphTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    struct Target {
        var name: String
        var path: String
        var dependencies: Set<String>
    }

    /// Every Swift target of the package with its declared local and product dependencies.
    static func targets() throws -> [Target] {
        let swift = try #require(["/usr/bin/swift", "/usr/local/bin/swift"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? which("swift"))
        // A scratch path of its own: `swift test` holds the lock of the package's `.build`.
        let scratch = NSTemporaryDirectory() + "edgy-dump-package-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let dump = try BoundedProcess.run(swift, ["package", "--scratch-path", scratch, "dump-package"], directory: root, timeout: .seconds(60))
        #expect(dump.termination.status == 0, "\(dump.stderr)")
        let package = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let targets = try #require(package["targets"] as? [[String: Any]])
        return targets.compactMap { target in
            guard let name = target["name"] as? String, let type = target["type"] as? String else { return nil }
            let directory = (target["path"] as? String) ?? (type == "test" ? "Tests/\(name)" : "Sources/\(name)")
            let dependencies = (target["dependencies"] as? [[String: Any]] ?? []).compactMap { dependency -> String? in
                if let byName = dependency["byName"] as? [Any] { return byName.first as? String }
                if let product = dependency["product"] as? [Any] { return product.first as? String }
                return nil
            }
            return Target(name: name, path: directory, dependencies: Set(dependencies))
        }
    }

    static func which(_ program: String) -> String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The modules the Swift files under `path` import, with the files that import each.
    static func imports(under path: String) -> [String: [String]] {
        var found: [String: [String]] = [:]
        let base = root + "/" + path
        guard let files = FileManager.default.enumerator(atPath: base) else { return found }
        for case let file as String in files where file.hasSuffix(".swift") {
            guard let text = try? String(contentsOfFile: base + "/" + file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                      words[..<index].allSatisfy({ $0.hasPrefix("@") }) else { continue }
                found[String(words[index + 1]), default: []].append(file)
            }
        }
        return found
    }

    @Test func everyImportOfAnEdgyModuleIsDeclaredAndEveryDeclaredModuleIsImported() throws {
        let targets = try Self.targets()
        let local = Set(targets.map(\.name))
        var problems: [String] = []
        for target in targets {
            let imports = Self.imports(under: target.path)
            guard !imports.isEmpty else { continue }  // C and system-library targets
            for (module, files) in imports where local.contains(module) && module != target.name && !target.dependencies.contains(module) {
                problems.append("\(target.name) imports \(module) (\(files.sorted().joined(separator: ", "))) without declaring it")
            }
            for dependency in target.dependencies where imports[dependency] == nil {
                // C modules linked for their symbols only are imported by no Swift file of the target's own.
                if dependency.hasPrefix("C") && local.contains(dependency) { continue }
                problems.append("\(target.name) declares \(dependency) but no file of it imports it")
            }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    /// Nothing but swift-crypto, for the SHA-256 that names blobs, and EdgyJSON, which writes
    /// reports and itself depends on nothing: the stores and the API link the model, never the jail.
    @Test func theModelModuleDependsOnNothingButCryptoAndJSON() throws {
        let targets = try Self.targets()
        let model = try #require(targets.first { $0.name == "EdgyModel" })
        #expect(model.dependencies.isSubset(of: ["Crypto", "EdgyJSON"]))
        #expect(Set(Self.imports(under: model.path).keys).isSubset(of: ["Foundation", "Crypto", "EdgyJSON"]))
        let json = try #require(targets.first { $0.name == "EdgyJSON" })
        #expect(json.dependencies.isEmpty)
        #expect(Set(Self.imports(under: json.path).keys).isSubset(of: ["Foundation"]))
    }
}
