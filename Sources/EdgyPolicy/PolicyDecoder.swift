import Foundation
import TOMLKit

/// Walks a parsed `TOMLTable` key by key, checking types, values and unknown keys, and collects
/// every error rather than stopping at the first.
struct PolicyFileDecoder {
    let file: String
    let lines: SourceLines
    var policy: Policy
    private(set) var origins: [String: Origin] = [:]
    private(set) var diagnostics: [PolicyDiagnostic] = []
    private(set) var extends: String?
    private(set) var extendsLine: Int?

    static func decode(_ root: [String: TOMLNode], name: String, file: String, text: String) -> DecodedFile {
        var decoder = PolicyFileDecoder(file: file, lines: SourceLines(text), policy: Policy(name: name))
        decoder.policy.run.env = [:]  // a file's env merges over its parent's (or the defaults') key by key
        decoder.walkRoot(root)
        return DecodedFile(
            policy: decoder.policy, origins: decoder.origins, extends: decoder.extends,
            extendsLine: decoder.extendsLine, diagnostics: decoder.diagnostics
        )
    }

    private init(file: String, lines: SourceLines, policy: Policy) {
        self.file = file
        self.lines = lines
        self.policy = policy
    }

    // MARK: Locations and errors

    /// A key's position: its table, its index in an `[[array]]`, its name.
    struct Place {
        var table: String
        var index: Int?
        var key: String?

        var shown: String? {
            guard let key else { return table.isEmpty ? nil : (index == nil ? "[\(table)]" : "[[\(table)]]") }
            if table.isEmpty { return key }
            return index == nil ? "[\(table)] \(key)" : "[[\(table)]] \(key)"
        }
        var dotted: String { [table.isEmpty ? nil : table, key].compactMap { $0 }.joined(separator: ".") }
    }

    func line(_ place: Place) -> Int? {
        if place.table == "run.env" {
            return lines.line(table: "run.env", key: place.key) ?? lines.line(table: "run", key: "env")
        }
        return lines.line(table: place.table, index: place.index, key: place.key)
            ?? (place.table.isEmpty ? nil : lines.line(table: "", key: place.table))
    }

    mutating func error(_ place: Place, _ message: String, line explicitLine: Int? = nil) {
        var shownPlace = place
        if place.table == "run.env" { shownPlace = Place(table: "run", key: "env") }
        diagnostics.append(PolicyDiagnostic(
            severity: .error, file: file, line: explicitLine ?? line(place), key: shownPlace.shown, message: message))
    }

    mutating func set(_ place: Place) {
        origins[place.dotted] = Origin(file: file, line: line(place))
    }

    // MARK: Typed readers

    mutating func string(_ node: TOMLNode, _ place: Place) -> String? {
        if case .string(let s) = node { return s }
        error(place, "expected a string, got \(node.shown)")
        return nil
    }

    mutating func bool(_ node: TOMLNode, _ place: Place) -> Bool? {
        if case .bool(let b) = node { return b }
        error(place, "expected true or false, got \(node.shown)")
        return nil
    }

    mutating func positiveInt(_ node: TOMLNode, _ place: Place) -> Int? {
        guard case .int(let i) = node, i > 0 else {
            error(place, "expected a positive integer, got \(node.shown)")
            return nil
        }
        if let max = PolicyVocabulary.maxima[place.key ?? ""], Double(i) > max {
            error(place, "\(i) is above the maximum of \(Int(max))")
            return nil
        }
        return i
    }

    mutating func positiveNumber(_ node: TOMLNode, _ place: Place) -> Double? {
        let value: Double
        switch node {
        case .int(let i): value = Double(i)
        case .double(let d): value = d
        default: value = -1
        }
        guard value > 0, value.isFinite else {
            error(place, "expected a positive number, got \(node.shown)")
            return nil
        }
        if let max = PolicyVocabulary.maxima[place.key ?? ""], value > max {
            error(place, "\(node.shown) is above the maximum of \(Int(max))")
            return nil
        }
        return value
    }

    mutating func id(_ node: TOMLNode, _ place: Place) -> UInt32? {
        // 4294967295 is (uid_t)-1, "no change" to setresuid(2): never a real id.
        guard case .int(let i) = node, i >= 0, i < Int(UInt32.max) else {
            error(place, "expected an id from 0 to \(UInt32.max - 1), got \(node.shown)")
            return nil
        }
        return UInt32(i)
    }

    mutating func strings(_ node: TOMLNode, _ place: Place) -> [String]? {
        guard case .array(let items) = node else {
            error(place, "expected an array of strings, got \(node.shown)")
            return nil
        }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else {
                error(place, "expected an array of strings, but an element is \(item.shown)")
                return nil
            }
            out.append(s)
        }
        return out
    }

    /// An array of strings each drawn from `allowed`; unknown ones get a suggestion.
    mutating func choices(_ node: TOMLNode, _ place: Place, allowed: [String], what: String) -> [String]? {
        guard let values = strings(node, place) else { return nil }
        var ok = true
        for value in values where !allowed.contains(value) {
            ok = false
            error(place, "unknown \(what) `\(value)`\(Suggest.hint(value, in: allowed)); expected one of \(allowed.joined(separator: ", "))",
                  line: lines.line(ofElement: value, from: line(place)))
        }
        return ok ? values : nil
    }

    mutating func choice(_ node: TOMLNode, _ place: Place, allowed: [String]) -> String? {
        guard let value = string(node, place) else { return nil }
        guard allowed.contains(value) else {
            error(place, "unknown value \"\(value)\"\(Suggest.hint(value, in: allowed)); expected one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))")
            return nil
        }
        return value
    }

    mutating func absolutePath(_ node: TOMLNode, _ place: Place) -> String? {
        guard let path = string(node, place) else { return nil }
        guard let problem = Self.absolutePathProblem(path) else { return path }
        error(place, problem)
        return nil
    }

    static func absolutePathProblem(_ path: String) -> String? {
        if !path.hasPrefix("/") { return "expected an absolute path, got \"\(path)\"" }
        if path.contains("\0") { return "path contains a NUL byte" }
        if path.split(separator: "/").contains("..") { return "path \"\(path)\" must not contain `..`" }
        return nil
    }

    // MARK: Tables

    mutating func walkRoot(_ root: [String: TOMLNode]) {
        let schema = PolicySchema.byDotted
        let tables = Set(schema.values.filter { $0.shape == .scalar && !$0.table.isEmpty }.map(\.table))
        for (key, node) in root.sorted(by: { $0.key < $1.key }) {
            let place = Place(table: "", key: key)
            if let entry = schema[key], entry.shape != .arrayTableField {
                let before = diagnostics.count
                entry.decode(&self, node, place)
                if diagnostics.count == before, entry.shape == .scalar, key != "extends" { set(place) }
            } else if tables.contains(key) {
                guard case .table(let table) = node else {
                    error(place, "expected a table [\(key)], got \(node.shown)")
                    continue
                }
                walkTable(key, table, schema: schema)
            } else {
                let candidates = (PolicyVocabulary.knownKeys[""] ?? []) + tables.sorted()
                let isTable: Bool = if case .table = node { true } else { false }
                let shown = isTable ? "table [\(key)]" : "key `\(key)`"
                diagnostics.append(PolicyDiagnostic(
                    file: file, line: lines.line(table: key) ?? line(place), key: isTable ? "[\(key)]" : key,
                    message: "unknown \(shown)\(Suggest.hint(key, in: candidates))"))
            }
        }
    }

    mutating func readExtends(_ node: TOMLNode, _ place: Place) {
        guard let s = string(node, place) else { return }
        if s.isEmpty || s.contains("/") || s.hasSuffix(".toml") {
            error(place, "expected a policy name (a file name in the same directory, without .toml), got \"\(s)\"")
        } else {
            extends = s
            extendsLine = line(place)
            policy.extends = s
        }
    }

    mutating func unknownKey(_ place: Place) {
        let known = PolicyVocabulary.knownKeys[place.table] ?? []
        let where_ = PolicyVocabulary.arrayTables.contains(place.table) ? "[[\(place.table)]]" : "[\(place.table)]"
        error(place, "unknown key `\(place.key ?? "")` in \(where_)\(Suggest.hint(place.key ?? "", in: known))")
    }

    mutating func walkTable(_ name: String, _ table: [String: TOMLNode], schema: [String: PolicyKey]) {
        for (key, node) in table.sorted(by: { $0.key < $1.key }) {
            let place = Place(table: name, key: key)
            guard let entry = schema[place.dotted], entry.shape == .scalar else {
                unknownKey(place)
                continue
            }
            let before = diagnostics.count
            entry.decode(&self, node, place)
            // `env` records where each of its variables is set itself.
            if diagnostics.count == before, key != "env" { set(place) }
        }
    }

    mutating func walkEnv(_ node: TOMLNode, _ place: Place) {
        guard case .table(let env) = node else {
            error(place, "expected a table of strings like { PATH = \"/usr/bin:/bin\" }, got \(node.shown)")
            return
        }
        set(place)
        for (name, value) in env.sorted(by: { $0.key < $1.key }) {
            let entry = Place(table: "run.env", key: name)
            guard Self.isEnvName(name) else {
                error(entry, "invalid environment variable name \"\(name)\"")
                continue
            }
            guard case .string(let s) = value else {
                error(entry, "env.\(name): expected a string, got \(value.shown)")
                continue
            }
            policy.run.env[name] = s
            set(entry)
        }
    }

    mutating func walkArrayTable(_ name: String, _ node: TOMLNode) {
        let place = Place(table: "", key: name)
        guard case .array(let items) = node else {
            error(place, "expected [[\(name)]] entries, got \(node.shown)")
            return
        }
        var mounts: [Policy.Mount] = []
        var tmpfs: [Policy.TmpfsMount] = []
        let before = diagnostics.count
        for (index, item) in items.enumerated() {
            let header = Place(table: name, index: index)
            guard case .table(let table) = item else {
                error(place, "expected [[\(name)]] entries, got \(item.shown)")
                continue
            }
            var source: String?, destination: String?, required = true, size = 16
            for (key, value) in table.sorted(by: { $0.key < $1.key }) {
                let p = Place(table: name, index: index, key: key)
                switch (name, key) {
                case ("mounts", "source"): source = absolutePath(value, p)
                case (_, "destination"):
                    if let d = absolutePath(value, p) {
                        if d == "/" { error(p, "cannot mount over /") } else { destination = d }
                    }
                case ("mounts", "required"): required = bool(value, p) ?? required
                case ("tmpfs", "size_mib"): size = positiveInt(value, p) ?? size
                default: unknownKey(p)
                }
            }
            if name == "mounts" {
                if table["source"] == nil { error(header, "missing required key `source`") }
                if let source { mounts.append(Policy.Mount(source: source, destination: destination, required: required)) }
            } else {
                if table["destination"] == nil { error(header, "missing required key `destination`") }
                if let destination { tmpfs.append(Policy.TmpfsMount(destination: destination, sizeMib: size)) }
            }
        }
        var seen: Set<String> = []
        for (index, destination) in (name == "mounts" ? mounts.map(\.destination) : tmpfs.map(\.destination)).enumerated()
            where !seen.insert(destination).inserted {
            error(Place(table: name, index: index), "destination \(destination) is mounted twice")
        }
        guard diagnostics.count == before else { return }
        if name == "mounts" { policy.mounts = mounts } else { policy.tmpfs = tmpfs }
        origins[name] = Origin(file: file, line: lines.line(table: name) ?? line(place))
        // Each entry's own line, for checks on the resolved policy ("mounts.0").
        for (index, item) in items.enumerated() {
            guard case .table(let table) = item else { continue }
            let key = table["destination"] != nil ? "destination" : "source"
            origins["\(name).\(index)"] = Origin(file: file, line: lines.line(table: name, index: index, key: key) ?? origins[name]?.line)
        }
    }

    // MARK: Value checks

    /// A table of environment variables (names checked, values strings), as a whole.
    mutating func envTable(_ node: TOMLNode, _ place: Place) -> [String: String]? {
        guard case .table(let table) = node else {
            error(place, "expected a table of strings like { PYTHONPATH = \"/deps\" }, got \(node.shown)")
            return nil
        }
        var env: [String: String] = [:]
        for (name, value) in table.sorted(by: { $0.key < $1.key }) {
            guard Self.isEnvName(name) else {
                error(place, "invalid environment variable name \"\(name)\"")
                return nil
            }
            guard case .string(let s) = value else {
                error(place, "\(name): expected a string, got \(value.shown)")
                return nil
            }
            env[name] = s
        }
        return env
    }

    /// A table of `[limits]` keys, as a task's limit overrides would give them.
    mutating func limitOverrides(_ node: TOMLNode, _ place: Place) -> LimitOverrides? {
        guard case .table(let table) = node else {
            error(place, "expected a table of limits like { wall_time_s = 60 }, got \(node.shown)")
            return nil
        }
        var json: [String: Any] = [:]
        for (name, value) in table.sorted(by: { $0.key < $1.key }) {
            guard let key = PolicySchema.byDotted["limits.\(name)"], let kind = key.override?.kind else {
                error(place, "unknown limit `\(name)`\(Suggest.hint(name, in: LimitOverrides.keys))")
                return nil
            }
            switch (kind, value) {
            case (.wholeNumber, .int(let i)) where i > 0: json[name] = i
            case (.number, .int(let i)) where i > 0: json[name] = Double(i)
            case (.number, .double(let x)) where x > 0 && x.isFinite: json[name] = x
            case (.choice, .string(let s)) where Policy.OutputOverflow(rawValue: s) != nil: json[name] = s
            default:
                error(place, "\(name): \(value.shown) is not a valid value for this limit")
                return nil
            }
        }
        guard let data = try? JSONSerialization.data(withJSONObject: json),
              let overrides = try? JSONDecoder().decode(LimitOverrides.self, from: data) else {
            error(place, "cannot read these limits")
            return nil
        }
        return overrides
    }

    mutating func checkCommand(_ argv: [String], _ place: Place) {
        if let program = argv.first, !program.hasPrefix("/"), !program.contains("{entry}") {
            error(place, "the program \"\(program)\" must be an absolute path (a policy names its program exactly; only a task's own command is looked up in the policy's PATH)")
        }
        if argv.contains(where: \.isEmpty) { error(place, "command arguments must not be empty strings") }
    }

    mutating func syscalls(_ node: TOMLNode, _ place: Place) -> [String]? {
        guard let names = strings(node, place) else { return nil }
        let known = PolicyVocabulary.syscallNames
        var ok = true
        for name in names {
            let isGroup = name.hasPrefix("@")
            if isGroup ? SyscallCatalog.groups[name] != nil : known.contains(name) { continue }
            ok = false
            let candidates = isGroup ? Array(SyscallCatalog.groups.keys) : Array(known)
            error(place, "unknown \(isGroup ? "syscall group" : "syscall") `\(name)`\(Suggest.hint(name, in: candidates))",
                  line: lines.line(ofElement: name, from: line(place)))
        }
        return ok ? names : nil
    }

    mutating func ioctls(_ node: TOMLNode, _ place: Place) -> [String]? {
        guard let names = strings(node, place) else { return nil }
        var ok = true
        for name in names where IoctlRequest.value(name) == nil {
            ok = false
            let known = IoctlRequest.known.keys.sorted()
            error(place, "unknown ioctl request `\(name)`\(Suggest.hint(name, in: known)); expected a number or one of \(known.joined(separator: ", "))",
                  line: lines.line(ofElement: name, from: line(place)))
        }
        return ok ? names : nil
    }

    struct Problem: Error { var message: String }

    /// Parses `kill_process`, `log` or `errno:NAME`.
    static func seccompAction(_ s: String) -> Result<Policy.SeccompAction, Problem> {
        switch s {
        case "kill_process": return .success(.killProcess)
        case "log": return .success(.log)
        default:
            guard s.hasPrefix("errno:") else {
                let hint = Suggest.hint(s, in: PolicyVocabulary.plainActions + ["errno:EPERM"])
                return .failure(Problem(message: "unknown action \"\(s)\"\(hint); expected \"kill_process\", \"errno:NAME\" (e.g. \"errno:EPERM\") or \"log\""))
            }
            let name = String(s.dropFirst("errno:".count))
            guard let number = ErrnoNames.table[name] else {
                return .failure(Problem(message: "unknown errno name `\(name)`\(Suggest.hint(name, in: ErrnoNames.table.keys))"))
            }
            return .success(.errno(number, name))
        }
    }

    static func isEnvName(_ s: String) -> Bool {
        guard let first = s.first, !first.isNumber else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
