import FoundationEssentials

/// Why a task's dependency manifest was refused: the line (in a file) or the entry (in a
/// `dependencies` list, 0-based) and what is wrong there.
public struct ManifestError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int?
    public var entry: Int?
    public var message: String

    public init(line: Int? = nil, entry: Int? = nil, _ message: String) {
        self.line = line
        self.entry = entry
        self.message = message
    }

    public var description: String {
        if let line { return "line \(line): \(message)" }
        return message
    }
}

/// The checks a manifest passes before a task that carries it is accepted. They admit package
/// names and version ranges, nothing that could point an installer elsewhere: no options (an
/// index URL, `-r other.txt`, `-e .`), no URLs, no paths, no git or file references. Where the
/// packages come from is the operator's choice (`dependency_registries`), never the task's.
public enum Manifest {
    /// Larger manifests are refused: these are lists of names, not data.
    public static let maxBytes = 64 << 10
    /// A lockfile lists every package of the tree, so it may be larger.
    public static let maxLockfileBytes = 4 << 20
    public static let maxRequirements = 500

    // MARK: requirements.txt

    /// Checks pip's `requirements.txt`: one requirement per line (PEP 508 names, extras, version
    /// specifiers and environment markers), comments and blank lines. Returns how many there are.
    public static func checkRequirements(_ bytes: [UInt8]) throws(ManifestError) -> Int {
        guard bytes.count <= maxBytes else { throw ManifestError("is larger than \(maxBytes) bytes") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ManifestError("is not UTF-8 text") }
        var count = 0
        // "\r\n" is one Character: split on both.
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let content = withoutComment(line)
            if content.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            do {
                try checkRequirement(content)
            } catch {
                throw ManifestError(line: index + 1, error.message)
            }
            count += 1
            guard count <= maxRequirements else { throw ManifestError(line: index + 1, "more than \(maxRequirements) requirements") }
        }
        return count
    }

    /// A `requirements.txt` holding `entries`, each checked as one line.
    public static func requirementsFile(_ entries: [String]) throws(ManifestError) -> [UInt8] {
        guard entries.count <= maxRequirements else { throw ManifestError("more than \(maxRequirements) dependencies") }
        for (index, entry) in entries.enumerated() {
            do throws(ManifestError) {
                guard !entry.contains("\n"), !entry.contains("\r"), !entry.contains("#") else {
                    throw ManifestError("must be one requirement, without newlines or comments")
                }
                try checkRequirement(Substring(entry))
            } catch {
                throw ManifestError(entry: index, error.message)
            }
        }
        let bytes = Array(entries.map { $0 + "\n" }.joined().utf8)
        guard bytes.count <= maxBytes else { throw ManifestError("the dependencies are larger than \(maxBytes) bytes") }
        return bytes
    }

    /// pip: a comment starts with `#` at the start of a line or after whitespace.
    private static func withoutComment(_ line: Substring) -> Substring {
        var previous: Character = " "
        for index in line.indices {
            if line[index] == "#" && (previous == " " || previous == "\t") { return line[..<index] }
            previous = line[index]
        }
        return line
    }

    /// `name [extras] [specifiers] [; marker]`, ASCII only.
    static func checkRequirement(_ text: Substring) throws(ManifestError) {
        let bytes = Array(text.utf8)
        guard bytes.count <= 1000 else { throw ManifestError("is longer than 1000 characters") }
        var i = 0
        func skipSpaces() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        func name() -> Bool {
            let start = i
            while i < bytes.count, isNameByte(bytes[i]) { i += 1 }
            guard i > start, isAlphanumeric(bytes[start]), isAlphanumeric(bytes[i - 1]) else { return false }
            return true
        }
        skipSpaces()
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") {
            throw ManifestError("options are not allowed (the package index is the operator's, not the task's)")
        }
        guard name() else {
            throw ManifestError("expected a package name (letters, digits, '.', '_', '-'), got `\(text.trimmed)`")
        }
        skipSpaces()
        if i < bytes.count, bytes[i] == UInt8(ascii: "[") {
            i += 1
            repeat {
                skipSpaces()
                guard name() else { throw ManifestError("expected extras like [security,socks] in `\(text.trimmed)`") }
                skipSpaces()
                guard i < bytes.count else { throw ManifestError("unclosed [ in `\(text.trimmed)`") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                guard bytes[i] == UInt8(ascii: "]") else { throw ManifestError("expected extras like [security,socks] in `\(text.trimmed)`") }
                i += 1
                break
            } while true
            skipSpaces()
        }
        // Version specifiers: `op version` clauses separated by commas.
        var clauses = 0
        while i < bytes.count, bytes[i] != UInt8(ascii: ";") {
            if clauses > 0 {
                guard bytes[i] == UInt8(ascii: ",") else { throw notARequirement(text) }
                i += 1
                skipSpaces()
            }
            let operators = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"]
            guard let op = operators.first(where: { bytes[i...].starts(with: $0.utf8) }) else { throw notARequirement(text) }
            i += op.utf8.count
            skipSpaces()
            let start = i
            while i < bytes.count, isVersionByte(bytes[i]) { i += 1 }
            guard i > start else { throw ManifestError("expected a version after \(op) in `\(text.trimmed)`") }
            skipSpaces()
            clauses += 1
        }
        // A marker: a small expression over fixed names and quoted values.
        if i < bytes.count {
            i += 1
            let marker = bytes[i...]
            guard marker.allSatisfy(isMarkerByte), marker.contains(where: isAlphanumeric) else {
                throw ManifestError("expected an environment marker like `python_version >= \"3.8\"` after ';' in `\(text.trimmed)`")
            }
        }
    }

    private static func notARequirement(_ text: Substring) -> ManifestError {
        ManifestError("`\(text.trimmed)` is not a requirement: a name, [extras], version specifiers (==, >=, ~=, ...) and `; markers` only; URLs, paths and options are not allowed")
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        isAlphanumeric(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    private static func isVersionByte(_ b: UInt8) -> Bool {
        isAlphanumeric(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "*") || b == UInt8(ascii: "+")
            || b == UInt8(ascii: "!") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    private static func isMarkerByte(_ b: UInt8) -> Bool {
        isNameByte(b) || b == 0x20 || b == 0x09 || b == UInt8(ascii: "'") || b == UInt8(ascii: "\"")
            || b == UInt8(ascii: "(") || b == UInt8(ascii: ")") || b == UInt8(ascii: "<") || b == UInt8(ascii: ">")
            || b == UInt8(ascii: "=") || b == UInt8(ascii: "!") || b == UInt8(ascii: "~")
    }

    // MARK: package.json

    /// The maps of a package.json whose values name versions to install.
    static let dependencyMaps = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]

    /// Checks npm's `package.json`: a JSON object whose dependency maps name registry packages
    /// with version ranges or dist-tags; no workspaces, and no URL, path, git or alias versions
    /// (there or in `overrides`). Returns how many dependencies it names.
    public static func checkPackageJSON(_ bytes: [UInt8]) throws(ManifestError) -> Int {
        guard bytes.count <= maxBytes else { throw ManifestError("is larger than \(maxBytes) bytes") }
        guard case .object(let root)? = JSONValue.parse(bytes) else { throw ManifestError("is not a JSON object") }
        if root["workspaces"] != nil { throw ManifestError("workspaces are not allowed: a task's packages come from the registry") }
        var count = 0
        for map in dependencyMaps {
            guard let value = root[map] else { continue }
            guard case .object(let entries) = value else { throw ManifestError("\(map) must be an object of package names and versions") }
            for (name, version) in entries {
                guard case .string(let range) = version else { throw ManifestError("\(map).\(name): the version must be a string") }
                try checkPackage(name, range, at: "\(map).\(name)")
                count += 1
            }
        }
        if let overrides = root["overrides"] { try checkOverrides(overrides, at: "overrides") }
        guard count <= maxRequirements else { throw ManifestError("more than \(maxRequirements) dependencies") }
        return count
    }

    /// Checks `package-lock.json`: a JSON object. (Where its `resolved` URLs point does not
    /// matter: the install step reaches only the registry.)
    public static func checkPackageLock(_ bytes: [UInt8]) throws(ManifestError) {
        guard bytes.count <= maxLockfileBytes else { throw ManifestError("is larger than \(maxLockfileBytes) bytes") }
        guard case .object? = JSONValue.parse(bytes) else { throw ManifestError("is not a JSON object") }
    }

    /// A `package.json` whose `dependencies` are `entries` (`name`, `name@range`, `@scope/name@range`).
    public static func packageJSONFile(_ entries: [String]) throws(ManifestError) -> [UInt8] {
        guard entries.count <= maxRequirements else { throw ManifestError("more than \(maxRequirements) dependencies") }
        var dependencies: [String: String] = [:]
        for (index, entry) in entries.enumerated() {
            let scoped = entry.hasPrefix("@")
            let body = scoped ? entry.dropFirst() : Substring(entry)
            let (name, range): (String, String)
            if let at = body.firstIndex(of: "@") {
                name = (scoped ? "@" : "") + body[..<at]
                range = String(body[body.index(after: at)...])
            } else {
                (name, range) = (entry, "*")
            }
            do {
                try checkPackage(name, range, at: nil)
            } catch {
                throw ManifestError(entry: index, error.message)
            }
            guard dependencies.updateValue(range, forKey: name) == nil else { throw ManifestError(entry: index, "\(name) is listed twice") }
        }
        let body = dependencies.sorted { $0.key < $1.key }.map { "    \(jsonString($0.key)): \(jsonString($0.value))" }
        return Array("{\n  \"private\": true,\n  \"dependencies\": {\n\(body.joined(separator: ",\n"))\n  }\n}\n".utf8)
    }

    private static func checkPackage(_ name: String, _ range: String, at place: String?) throws(ManifestError) {
        let prefix = place.map { "\($0): " } ?? ""
        guard isPackageName(name) else {
            throw ManifestError("\(prefix)\"\(name)\" is not an npm package name (lower case letters, digits, '-', '.', '_', '~', an optional @scope/)")
        }
        guard range.utf8.count <= 256, range.utf8.allSatisfy(isRangeByte) else {
            throw ManifestError("\(prefix)\"\(range)\" is not a version range or tag: URLs, paths, git and aliases are not allowed")
        }
    }

    private static func checkOverrides(_ value: JSONValue, at place: String) throws(ManifestError) {
        switch value {
        case .string(let range):
            guard range.utf8.count <= 256, range.utf8.allSatisfy(isRangeByte) || range.hasPrefix("$") && range.dropFirst().utf8.allSatisfy(isPackageNameByte) else {
                throw ManifestError("\(place): \"\(range)\" is not a version range: URLs, paths, git and aliases are not allowed")
            }
        case .object(let entries):
            for (key, nested) in entries { try checkOverrides(nested, at: "\(place).\(key)") }
        default:
            throw ManifestError("\(place) must hold version ranges")
        }
    }

    static func isPackageName(_ name: String) -> Bool {
        var rest = Substring(name)
        guard !rest.isEmpty, rest.utf8.count <= 214 else { return false }
        if rest.hasPrefix("@") {
            guard let slash = rest.firstIndex(of: "/") else { return false }
            let scope = rest[rest.index(after: rest.startIndex)..<slash]
            guard isNamePart(scope) else { return false }
            rest = rest[rest.index(after: slash)...]
        }
        return isNamePart(rest)
    }

    private static func isNamePart(_ part: Substring) -> Bool {
        guard let first = part.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "_") else { return false }
        return part.utf8.allSatisfy(isPackageNameByte)
    }

    private static func isPackageNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
    }

    /// Semver ranges (`^1.2.3`, `>=1 <2 || 3.x`, `*`) and dist-tags (`latest`): no ':' or '/'.
    private static func isRangeByte(_ b: UInt8) -> Bool {
        isAlphanumeric(b) || b == 0x20 || b == UInt8(ascii: ".") || b == UInt8(ascii: "^") || b == UInt8(ascii: "~")
            || b == UInt8(ascii: "<") || b == UInt8(ascii: ">") || b == UInt8(ascii: "=") || b == UInt8(ascii: "|")
            || b == UInt8(ascii: "*") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-")
    }

    private static func jsonString(_ s: String) -> String {
        // Names and ranges were checked: no quotes, backslashes or control characters.
        "\"\(s)\""
    }
}

extension Substring {
    fileprivate var trimmed: String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// Just enough JSON for the checks above, decoded by `JSONDecoder` (no hand-written parser).
enum JSONValue: Decodable, Sendable {
    case object([String: JSONValue]), array([JSONValue]), string(String), number(Double), bool(Bool), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let n = try? container.decode(Double.self) { self = .number(n) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }
}
