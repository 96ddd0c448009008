import Foundation
import TOMLKit

/// Loads policy files: TOML → checked `Policy`, with `extends` resolved in the file's directory.
///
/// Every error names file, line and key, and all errors of a file are reported together
///. Warnings (dangerous grants, contradictions) do not stop a policy from loading.
public enum PolicyLoader {
    /// Table name ("" for the top level) → the keys the decoder accepts. `docs/policies.md` is
    /// tested against this.
    public static var knownKeys: [String: [String]] { PolicyVocabulary.knownKeys }

    /// Loads one file; its name is the file name without `.toml`, and `extends` is resolved
    /// among the files next to it.
    /// - Throws: `PolicyLoadError` with every error found in the file and its parents.
    public static func load(file: String) throws(PolicyLoadError) -> LoadedPolicy {
        let (name, directory) = nameAndDirectory(of: file)
        let text = try read(file)
        return try parse(text, name: name, file: file, directory: directory)
    }

    /// `policies/c.toml` → `("c", "<cwd>/policies")`: the file's name without its extension, and
    /// its directory as an absolute path. Plain string work: `URL(fileURLWithPath:)`, used before,
    /// costs a `stat` and URL parsing at every `edgy run`.
    public static func nameAndDirectory(of file: String) -> (name: String, directory: String) {
        // By hand over the bytes: each generic algorithm the runtime meets for the first time
        // (`split`, `joined`) costs a scan of every protocol conformance in the binary.
        var absolute = file.hasPrefix("/") ? [] : currentDirectory() + [UInt8(ascii: "/")]
        absolute += file.utf8
        var components: [ArraySlice<UInt8>] = []
        var start = 0
        for index in 0...absolute.count where index == absolute.count || absolute[index] == UInt8(ascii: "/") {
            let component = absolute[start..<index]
            start = index + 1
            // Without empty and `.` components; `..` stays, since a symlink before it decides where it leads.
            if component.isEmpty || component.elementsEqual([UInt8(ascii: ".")]) { continue }
            components.append(component)
        }
        let base = components.popLast() ?? []
        var directory: [UInt8] = components.isEmpty ? [UInt8(ascii: "/")] : []
        for component in components { directory.append(UInt8(ascii: "/")); directory += component }
        var name = base
        if let dot = base.lastIndex(of: UInt8(ascii: ".")), dot != base.startIndex, dot != base.endIndex - 1 {
            name = base[..<dot]
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: directory, as: UTF8.self))
    }

    private static func currentDirectory() -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return Array(FileManager.default.currentDirectoryPath.utf8) }
        return buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    }

    /// Loads `DIRECTORY/NAME.toml`.
    /// - Throws: `PolicyLoadError`; a missing file is one error without a line.
    public static func load(name: String, directory: String) throws(PolicyLoadError) -> LoadedPolicy {
        // Names can come from API requests: never let one walk out of the policy directory.
        guard isValidName(name) else {
            throw PolicyLoadError(diagnostics: [PolicyDiagnostic(file: directory, message: "invalid policy name \"\(name)\"")])
        }
        let file = path(directory, name)
        return try parse(read(file), name: name, file: file, directory: directory)
    }

    /// Loads policy text. With `directory == nil`, a policy that `extends` another is an error.
    /// - Parameters:
    ///   - name: The policy's name (normally its file name without `.toml`).
    ///   - file: The path shown in diagnostics.
    ///   - directory: Where `extends` looks for `NAME.toml`.
    /// - Throws: `PolicyLoadError` with every error found.
    public static func parse(_ text: String, name: String, file: String, directory: String?) throws(PolicyLoadError) -> LoadedPolicy {
        switch resolve(text: text, name: name, file: file, directory: directory, chain: []) {
        case .failure(let error):
            throw error
        case .success(let resolved):
            let warnings = PolicyChecks.warnings(resolved.policy, origins: resolved.origins, file: file)
            return LoadedPolicy(policy: resolved.policy, warnings: warnings, path: file)
        }
    }

    // MARK: Internals

    struct Resolved {
        var policy: Policy
        var origins: [String: Origin]
    }

    /// A policy name is a plain file name: no `/`, not hidden, not empty.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && !name.hasPrefix(".") && !name.contains("\0")
    }

    static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? "\(directory)\(name).toml" : "\(directory)/\(name).toml"
    }

    static func read(_ file: String) throws(PolicyLoadError) -> String {
        do {
            return try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw PolicyLoadError(diagnostics: [PolicyDiagnostic(file: file, message: "cannot read policy file: \(error.localizedDescription)")])
        }
    }

    /// Decodes one file, then its parent chain, and merges them into the effective policy.
    static func resolve(text: String, name: String, file: String, directory: String?, chain: [String]) -> Result<Resolved, PolicyLoadError> {
        let root: [String: TOMLNode]
        do {
            guard case .table(let t) = TOMLNode(try TOMLGuard.parse(text)) else { fatalError("a TOMLTable converts to a table") }
            root = t
        } catch {
            return .failure(PolicyLoadError(diagnostics: [PolicyDiagnostic(file: file, line: error.line, message: "TOML syntax error: \(error.message)")]))
        }
        let decoded = PolicyFileDecoder.decode(root, name: name, file: file, text: text)
        var diagnostics = decoded.diagnostics
        let extendsKey = "extends"

        var base = Resolved(policy: Policy(name: name), origins: [:])
        if let parent = decoded.extends {
            let chain = chain + [name]
            if let start = chain.firstIndex(of: parent) {
                let cycle = (chain[start...] + [parent]).joined(separator: " -> ")
                diagnostics.append(PolicyDiagnostic(file: file, line: decoded.extendsLine, key: extendsKey, message: "extends cycle: \(cycle)"))
            } else if let directory {
                let parentFile = path(directory, parent)
                if let parentText = try? String(contentsOfFile: parentFile, encoding: .utf8) {
                    switch resolve(text: parentText, name: parent, file: parentFile, directory: directory, chain: chain) {
                    case .success(let resolved): base = resolved
                    case .failure(let error):
                        diagnostics.append(contentsOf: error.diagnostics)
                        if !error.diagnostics.contains(where: { $0.message.hasPrefix("extends cycle") }) {
                            diagnostics.append(PolicyDiagnostic(
                                file: file, line: decoded.extendsLine, key: extendsKey, message: "extends `\(parent)`, which has errors"))
                        }
                    }
                } else {
                    let siblings = (try? FileManager.default.contentsOfDirectory(atPath: directory))?
                        .filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) } ?? []
                    diagnostics.append(PolicyDiagnostic(
                        file: file, line: decoded.extendsLine, key: extendsKey,
                        message: "extends `\(parent)`, but there is no \(parentFile)\(Suggest.hint(parent, in: siblings.filter { $0 != name }))"))
                }
            } else {
                diagnostics.append(PolicyDiagnostic(
                    file: file, line: decoded.extendsLine, key: extendsKey,
                    message: "extends `\(parent)`, but no policy directory was given to find it in"))
            }
        }
        guard diagnostics.isEmpty else { return .failure(PolicyLoadError(diagnostics: sorted(diagnostics))) }

        let merged = merge(decoded, over: base, name: name)
        let errors = PolicyChecks.errors(merged.policy, origins: merged.origins, file: file)
        guard errors.isEmpty else { return .failure(PolicyLoadError(diagnostics: errors)) }
        return .success(merged)
    }

    /// Diagnostics in file order, then line order; duplicates removed.
    static func sorted(_ diagnostics: [PolicyDiagnostic]) -> [PolicyDiagnostic] {
        var seen: Set<PolicyDiagnostic> = []
        return diagnostics.enumerated()
            .filter { seen.insert($0.element).inserted }
            .sorted { a, b in
                if a.element.file != b.element.file { return a.offset < b.offset }
                return (a.element.line ?? 0, a.offset) < (b.element.line ?? 0, b.offset)
            }
            .map(\.element)
    }

    /// Applies what a file sets over its parent: scalars replace, tables merge key by key,
    /// arrays replace as a whole, `env` merges key by key.
    static func merge(_ file: DecodedFile, over parent: Resolved, name: String) -> Resolved {
        var p = parent.policy
        let c = file.policy
        p.name = name
        p.extends = file.extends
        let schema = PolicySchema.byDotted
        // "run.env.NAME" and "mounts.0" are origins only: `run.env` and `mounts` carry the values.
        for key in file.origins.keys { schema[key]?.merge(&p, c) }
        return Resolved(policy: p, origins: parent.origins.merging(file.origins) { _, new in new })
    }
}
