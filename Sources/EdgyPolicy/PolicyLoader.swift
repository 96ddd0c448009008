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
        let url = URL(fileURLWithPath: file)
        let name = url.deletingPathExtension().lastPathComponent
        let text = try read(file)
        return try parse(text, name: name, file: file, directory: url.deletingLastPathComponent().path)
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
        if let line = TOMLHeaderCheck.firstBadHeader(in: text) {
            return .failure(PolicyLoadError(diagnostics: [PolicyDiagnostic(
                file: file, line: line, message: "TOML syntax error: a table header must start with a key (letters, digits, _ or -, or a quoted key)")]))
        }
        do {
            let table = try TOMLTable(string: text)
            guard case .table(let t) = TOMLNode(table) else { fatalError("a TOMLTable converts to a table") }
            root = t
        } catch let error as TOMLParseError {
            return .failure(PolicyLoadError(diagnostics: [PolicyDiagnostic(
                file: file, line: error.source.begin.line, message: "TOML syntax error: \(error.description)")]))
        } catch {
            return .failure(PolicyLoadError(diagnostics: [PolicyDiagnostic(file: file, message: "TOML syntax error: \(error)")]))
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
        for key in file.origins.keys {
            switch key {
            case "description": p.description = c.description
            case "run.command": p.run.command = c.run.command
            case "run.entry": p.run.entry = c.run.entry
            case "run.workdir": p.run.workdir = c.run.workdir
            case "run.env": p.run.env.merge(c.run.env) { _, new in new }
            case "run.task_env": p.run.taskEnv = c.run.taskEnv
            case "run.allow_command_override": p.run.allowCommandOverride = c.run.allowCommandOverride
            case "run.hostname": p.run.hostname = c.run.hostname
            case "limits.wall_time_s": p.limits.wallTimeS = c.limits.wallTimeS
            case "limits.cpu_time_s": p.limits.cpuTimeS = c.limits.cpuTimeS
            case "limits.memory_mib": p.limits.memoryMib = c.limits.memoryMib
            case "limits.pids": p.limits.pids = c.limits.pids
            case "limits.open_files": p.limits.openFiles = c.limits.openFiles
            case "limits.file_size_mib": p.limits.fileSizeMib = c.limits.fileSizeMib
            case "limits.workdir_mib": p.limits.workdirMib = c.limits.workdirMib
            case "limits.tmp_mib": p.limits.tmpMib = c.limits.tmpMib
            case "limits.stdout_kib": p.limits.stdoutKib = c.limits.stdoutKib
            case "limits.stderr_kib": p.limits.stderrKib = c.limits.stderrKib
            case "limits.output_overflow": p.limits.outputOverflow = c.limits.outputOverflow
            case "limits.pending_signals": p.limits.pendingSignals = c.limits.pendingSignals
            case "limits.mqueue_kib": p.limits.mqueueKib = c.limits.mqueueKib
            case "limits.memlock_kib": p.limits.memlockKib = c.limits.memlockKib
            case "mounts": p.mounts = c.mounts
            case "tmpfs": p.tmpfs = c.tmpfs
            case "network.mode": p.network.mode = c.network.mode
            case "identity.uid": p.identity.uid = c.identity.uid
            case "identity.gid": p.identity.gid = c.identity.gid
            case "identity.user_namespace": p.identity.userNamespace = c.identity.userNamespace
            case "seccomp.default_action": p.seccomp.defaultAction = c.seccomp.defaultAction
            case "seccomp.allow": p.seccomp.allow = c.seccomp.allow
            case "seccomp.deny": p.seccomp.deny = c.seccomp.deny
            case "seccomp.socket_families": p.seccomp.socketFamilies = c.seccomp.socketFamilies
            case "seccomp.ioctl_deny": p.seccomp.ioctlDeny = c.seccomp.ioctlDeny
            case "seccomp.allow_namespace_clone": p.seccomp.allowNamespaceClone = c.seccomp.allowNamespaceClone
            case "retry.max_attempts": p.retry.maxAttempts = c.retry.maxAttempts
            case "retry.retry_on": p.retry.retryOn = c.retry.retryOn
            case "access.roles": p.access.roles = c.access.roles
            default: break  // "run.env.NAME": origins only
            }
        }
        return Resolved(policy: p, origins: parent.origins.merging(file.origins) { _, new in new })
    }
}
