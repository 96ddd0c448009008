import EdgyAuth
import EdgyManifest
import EdgyModel
import EdgyPolicy
import EdgyStore
import EdgyTaskJSON
import EdgyUpload
import Foundation

/// A task as a client described it (from JSON or multipart), before validation. `validate` turns it
/// into a `TaskSpec` or a precise `APIError`; nothing else reaches the store.
struct TaskDraft: Sendable {
    struct File: Sendable {
        var path: String
        var contents: [UInt8]
        var mode: UInt32
        /// Where the file came from, for error fields: `files[2]`, or `file:task.tar!src/a.js`.
        var field: String
        /// A stored blob (sha256 hex) whose bytes the file is, instead of `contents`.
        var blob: String? = nil
    }

    var name: String?
    var policy: String?
    var input: String?
    var files: [File] = []
    var command: [String]?
    var stdin: [UInt8]?
    var env: [String: String] = [:]
    var limits = LimitOverrides()
    var maxAttempts: Int?
    /// A `dependencies` list, which becomes the policy's manifest among the files.
    var dependencies: [String]?
    /// Prototype `PUT /`: the uploaded file that is the entry (copied to the policy's entry path).
    var entryFile: String?
    /// Output patterns, a subset of the policy's.
    var outputs: [String]?
    /// A multi-step task's steps, as sent.
    var steps: [StepBody]?
    var callbackURL: String?

    /// The validated spec.
    /// - Throws: `APIError`: 400 bad field, 403 policy not allowed, 404 unknown policy, 413 too large,
    ///   422 override the policy does not allow.
    func validate(principal: Principal, policies: PolicyCatalog, config: APIConfiguration, fallbackPolicy: String) throws(APIError) -> TaskSpec {
        let name = try Self.checkName(self.name)
        let (policyName, policy) = try usablePolicy(principal: principal, policies: policies, fallback: fallbackPolicy)
        var files = TaskFileSet()
        try checkFiles(into: &files)
        try checkEntry(into: &files, policy: policy, policyName: policyName)
        try checkDependencies(into: &files, policy: policy, policyName: policyName)
        try checkCommand(policy: policy, policyName: policyName, files: files)
        try checkEnvironment(policy: policy, policyName: policyName)
        try checkOutputs(policy: policy, policyName: policyName)
        let steps = try checkSteps(policy: policy, policyName: policyName, files: files)
        if let callbackURL { try Self.checkCallback(callbackURL, config: config) }
        do {
            _ = try policy.limits.applying(limits)
        } catch {
            throw APIError.unprocessable("limit_not_allowed", error.description, field: "limits.\(error.key)")
        }
        let maxAttempts = self.maxAttempts ?? policy.retry.maxAttempts
        guard maxAttempts >= 1 else { throw APIError.badRequest("max_attempts must be at least 1", field: "max_attempts") }
        guard maxAttempts <= policy.retry.maxAttempts else {
            throw APIError.unprocessable("max_attempts_not_allowed", "policy \(policyName) allows at most \(policy.retry.maxAttempts) attempts", field: "max_attempts")
        }
        let stdin = self.stdin ?? []
        try checkSize(files: files.files, stdin: stdin, steps: steps ?? [], config: config)
        return TaskSpec(
            name: name, policy: policyName, files: files.files, command: command, stdin: stdin, env: env,
            limits: limits, maxAttempts: maxAttempts, outputs: outputs, steps: steps)
    }

    /// The task's files in order, each path once, with the field that brought it.
    struct TaskFileSet {
        var files: [TaskFile] = []
        var fields: [String: String] = [:]

        mutating func add(_ file: TaskFile, field: String) throws(APIError) {
            if let other = fields[file.path] {
                throw APIError.badRequest("duplicate file path \(file.path) (also \(other))", field: field)
            }
            fields[file.path] = field
            files.append(file)
        }

        func contains(_ path: String) -> Bool { fields[path] != nil }
    }

    /// The named policy (or the fallback), if it exists and the principal may use it.
    private func usablePolicy(principal: Principal, policies: PolicyCatalog, fallback: String) throws(APIError) -> (String, Policy) {
        let policyName = policy ?? fallback
        guard !policyName.isEmpty, PolicyLoader.isValidName(policyName), let loaded = policies.policy(named: policyName) else {
            throw APIError.policyNotFound(policyName, field: "policy")
        }
        guard Access.mayUse(principal, loaded.policy) else {
            throw APIError.forbidden("this token may not use policy \(policyName)", field: "policy")
        }
        return (policyName, loaded.policy)
    }

    /// Paths relative and clean, modes only permission bits, no path twice.
    private func checkFiles(into set: inout TaskFileSet) throws(APIError) {
        for file in self.files {
            guard let path = Archive.safePath(file.path) else {
                throw APIError.badRequest("file path \(file.path) must be relative, without '..', '.', empty components or control characters", field: file.field)
            }
            guard file.mode & ~0o777 == 0 else {
                throw APIError.badRequest("file mode \(String(file.mode, radix: 8)) may only have permission bits (0 to 777)", field: file.field)
            }
            if let blob = file.blob {
                try set.add(TaskFile(path: path, blob: blob, mode: file.mode), field: file.field)
            } else {
                try set.add(TaskFile(path: path, contents: file.contents, mode: file.mode), field: file.field)
            }
        }
    }

    /// Each pattern well formed, and only under a policy that collects outputs. A task's pattern
    /// narrows the policy's (a file must match both), so any pattern is safe to accept.
    /// The webhook's URL: well formed, and not an address the operator has not allowed (a
    /// literal in a private, loopback or metadata range, `localhost`). Names are checked again,
    /// with every address they resolve to, at each delivery.
    static func checkCallback(_ callbackURL: String, config: APIConfiguration) throws(APIError) {
        guard config.webhooksEnabled else {
            throw APIError.badRequest("this server delivers no webhooks (webhooks = \"off\")", field: "callback_url")
        }
        let url: CallbackURL
        do {
            url = try CallbackURL.parse(callbackURL)
        } catch {
            throw APIError.badRequest("callback_url \(error.message)", field: "callback_url")
        }
        if let why = config.callbackAllowlist.refusal(url) {
            throw APIError.badRequest("callback_url is refused: \(why); an operator may allow it with webhook_allow", field: "callback_url")
        }
    }

    private func checkOutputs(policy: Policy, policyName: String) throws(APIError) {
        guard let outputs else { return }
        guard policy.outputs.enabled || outputs.isEmpty else {
            throw APIError.unprocessable("outputs_not_allowed", "policy \(policyName) collects no output files (it has no [outputs] paths)", field: "outputs")
        }
        guard outputs.count <= 64 else { throw APIError.badRequest("outputs may list at most 64 patterns", field: "outputs") }
        for (i, pattern) in outputs.enumerated() {
            do throws(OutputPatternError) { _ = try OutputPattern(pattern) } catch {
                throw APIError.badRequest(error.description, field: "outputs[\(i)]")
            }
        }
    }

    /// The prototype's `input`: the entry file's text, or the name of an uploaded file that becomes
    /// the policy's entry.
    private func checkEntry(into set: inout TaskFileSet, policy: Policy, policyName: String) throws(APIError) {
        if let entryFile {
            guard let source = set.files.first(where: { $0.path == entryFile }) else {
                throw APIError.badRequest("input names \(entryFile), which is not among the uploaded files", field: "input")
            }
            guard let entry = policy.run.entry else {
                throw APIError.unprocessable("input_not_allowed", "policy \(policyName) has no entry file for input", field: "input")
            }
            if entry != source.path { try set.add(TaskFile(path: entry, contents: source.contents, mode: source.mode), field: "input") }
        } else if let input {
            guard let entry = policy.run.entry else {
                throw APIError.unprocessable("input_not_allowed", "policy \(policyName) has no entry file, so input is not accepted; send files and a command", field: "input")
            }
            try set.add(TaskFile(path: entry, contents: Array(input.utf8), mode: 0o644), field: "input")
        }
    }

    /// `dependencies` becomes the policy's manifest; a manifest or lockfile among the files must
    /// pass the format's checks (names and versions only). 400 names the entry or the file.
    private func checkDependencies(into set: inout TaskFileSet, policy: Policy, policyName: String) throws(APIError) {
        let deps = policy.dependencies
        if let list = dependencies {
            guard deps.enabled else {
                throw APIError.unprocessable("dependencies_not_allowed", "policy \(policyName) takes no dependencies", field: "dependencies")
            }
            guard !list.isEmpty else { throw APIError.badRequest("dependencies must list at least one package", field: "dependencies") }
            guard !set.contains(deps.manifest) else {
                throw APIError.badRequest("give dependencies or a \(deps.manifest) file, not both", field: "dependencies")
            }
            let manifest: [UInt8]
            do throws(ManifestError) {
                manifest = deps.format == .packageJSON ? try Manifest.packageJSONFile(list) : try Manifest.requirementsFile(list)
            } catch {
                throw APIError.badRequest("dependencies: \(error.message)", field: error.entry.map { "dependencies[\($0)]" } ?? "dependencies")
            }
            try set.add(TaskFile(path: deps.manifest, contents: manifest, mode: 0o644), field: "dependencies")
            return
        }
        guard deps.enabled else { return }
        for file in set.files where file.path == deps.manifest || (!deps.lockfile.isEmpty && file.path == deps.lockfile) {
            guard file.blob == nil else {
                throw APIError.badRequest("\(file.path) is checked before it is queued, so send its content, not a blob", field: set.fields[file.path] ?? file.path)
            }
            do throws(ManifestError) {
                switch (deps.format, file.path == deps.manifest) {
                case (.requirements, true): _ = try Manifest.checkRequirements(file.contents)
                case (.packageJSON, true): _ = try Manifest.checkPackageJSON(file.contents)
                case (.packageJSON, false): try Manifest.checkPackageLock(file.contents)
                default: break
                }
            } catch {
                throw APIError.badRequest("\(file.path): \(error)", field: set.fields[file.path] ?? file.path)
            }
        }
    }

    /// A task's own command where the policy allows one; else the policy's, with its entry file.
    /// A multi-step task's steps carry the commands instead.
    private func checkCommand(policy: Policy, policyName: String, files: TaskFileSet) throws(APIError) {
        guard steps == nil else { return }
        if let command {
            try Self.checkCommandOverride(command, policy: policy, policyName: policyName, field: "command")
        } else {
            try Self.checkPolicyCommand(policy: policy, policyName: policyName, files: files, field: "command")
        }
    }

    static func checkCommandOverride(_ command: [String], policy: Policy, policyName: String, field: String) throws(APIError) {
        guard policy.run.allowCommandOverride else {
            throw APIError.unprocessable("command_override_not_allowed", "policy \(policyName) does not allow a task's own command", field: field)
        }
        guard !command.isEmpty, command.count <= 4096 else { throw APIError.badRequest("command must be a non-empty array of strings", field: field) }
        for (i, arg) in command.enumerated() where arg.contains("\0") || (i == 0 && arg.isEmpty) {
            throw APIError.badRequest("command arguments must not contain NUL and the program must not be empty", field: "\(field)[\(i)]")
        }
    }

    /// The policy's command, which needs the entry file if it names one.
    static func checkPolicyCommand(policy: Policy, policyName: String, files: TaskFileSet, field: String) throws(APIError) {
        if policy.run.command.isEmpty {
            throw APIError.unprocessable("command_required", "policy \(policyName) has no command; the task must give one", field: field)
        } else if policy.run.command.contains(where: { $0.contains("{entry}") }), let entry = policy.run.entry, !files.contains(entry) {
            throw APIError.unprocessable("entry_missing", "policy \(policyName) runs \(entry); give input or a file named \(entry)", field: "input")
        }
    }

    /// Only the keys the policy's `task_env` lists, without NUL or '='.
    private func checkEnvironment(policy: Policy, policyName: String) throws(APIError) {
        for (key, value) in env.sorted(by: { $0.key < $1.key }) {
            guard !key.isEmpty, !key.contains("="), !key.contains("\0"), !value.contains("\0") else {
                throw APIError.badRequest("environment keys must be non-empty without '=' or NUL, values without NUL", field: "env.\(key)")
            }
            guard policy.run.taskEnv.contains(key) else {
                throw APIError.unprocessable("env_not_allowed", "policy \(policyName) does not let a task set \(key) (allowed: \(policy.run.taskEnv.joined(separator: ", ")))", field: "env.\(key)")
            }
        }
    }

    /// At most `maxFilesPerTask` files and `maxTaskBytes` of files, stdin and cases together.
    private func checkSize(files: [TaskFile], stdin: [UInt8], steps: [StepSpec], config: APIConfiguration) throws(APIError) {
        guard files.count <= config.maxFilesPerTask else {
            throw APIError.tooLarge("a task may have at most \(config.maxFilesPerTask) files", field: "files")
        }
        let bytes = files.reduce(stdin.count) { $0 + $1.contents.count } + steps.reduce(0) { $0 + $1.storedBytes }
        guard bytes <= config.maxTaskBytes else {
            throw APIError.tooLarge("a task's files, stdin and cases may be at most \(config.maxTaskBytes) bytes (these are \(bytes))", field: "files")
        }
    }

    static func checkName(_ name: String?) throws(APIError) -> String {
        guard let name else { return "task" }
        guard !name.isEmpty, name.utf8.count <= 200, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw APIError.badRequest("name must be 1 to 200 bytes without control characters", field: "name")
        }
        return name
    }
}
