import Crypto
import Foundation

extension Policy {
    /// The effective policy as TOML, every key explicit, in a fixed order: what `edgy policy show`
    /// prints. It stands on its own: the parent it `extends` is already applied, so it is named in
    /// a comment only, and loading the text anywhere gives an equal `Policy` (but for `extends`)
    /// with the same digest.
    /// `replacing` gives the text of a key ("seccomp.allow" → "allow = [...]") instead of its rendering.
    public func renderTOML(replacing: [String: String] = [:]) -> String {
        var out = "# effective policy `\(name)`: every value below is already resolved\n"
        if let extends { out += "# (extends \(Self.toml(extends)), applied: this text needs no parent)\n" }
        out += "description = \(Self.toml(description))\n"
        return out + renderBody(replacing: replacing)
    }

    /// Hex SHA-256 of the canonical rendering (`description` and every table; not `name` or
    /// `extends`): it changes exactly when what the jail does changes, and is stable across key
    /// order, formatting and comments in the file.
    public var digest: String {
        let canonical = "description = \(Self.toml(description))\n" + renderBody()
        let hex = Array("0123456789abcdef".utf8)
        // An Array, not `Data(canonical.utf8)`: Data's generic initializer is instantiated at run
        // time, a scan of every conformance in the binary at each `edgy run`.
        return String(decoding: SHA256.hash(data: Array(canonical.utf8)).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// This policy as a file that `extends` `parent`: only the keys whose values differ from the
    /// parent's (`[[…]]` blocks as a whole), plus the top-level `extends` and `description`.
    /// `replacing` gives the text of a key ("seccomp.allow" → "allow = [...]") instead of its
    /// rendering, e.g. to comment its entries. Nil when a difference cannot be written over the
    /// parent: a table the parent has and this policy turns off.
    public func renderTOML(over parent: Policy, parentName: String, replacing: [String: String] = [:]) -> String? {
        var out = "extends = \(Self.toml(parentName))\ndescription = \(Self.toml(description))\n"
        var table = ""
        for key in PolicySchema.keys {
            switch key.shape {
            case .scalar where !key.table.isEmpty:
                let mine = key.render(self), theirs = key.render(parent)
                let dotted = "\(key.table).\(key.name)"
                guard mine != theirs || replacing[dotted] != nil else { continue }
                guard let mine else { return nil }
                if key.table != table {
                    table = key.table
                    out += "\n[\(table)]\n"
                }
                out += (replacing[dotted] ?? "\(key.name) = \(mine)") + "\n"
            case .arrayTable:
                table = ""
                let mine = key.render(self), theirs = key.render(parent)
                guard mine != theirs else { continue }
                guard let mine, !mine.isEmpty else { return nil }  // no blocks would inherit the parent's
                out += mine
            case .scalar, .arrayTableField:
                continue
            }
        }
        return out
    }

    /// Every table key from `PolicySchema`, in its order, under its table's header.
    private func renderBody(replacing: [String: String] = [:]) -> String {
        var out = ""
        var table = ""
        for key in PolicySchema.keys {
            switch key.shape {
            case .scalar where !key.table.isEmpty:
                if key.table != table {
                    table = key.table
                    out += "\n[\(table)]\n"
                }
                if let text = replacing["\(key.table).\(key.name)"] {
                    out += text + "\n"
                } else if let value = key.render(self) {
                    out += "\(key.name) = \(value)\n"
                }
            case .arrayTable:
                table = ""
                out += key.render(self) ?? ""
            case .scalar, .arrayTableField:
                continue  // top-level keys come before the tables; fields are in their blocks
            }
        }
        return out
    }

    /// A TOML basic string.
    static func toml(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// An array on one line, or wrapped at about 100 columns when long (deny lists).
    static func toml(_ items: [String]) -> String {
        let quoted = items.map { toml($0) }
        let oneLine = "[" + quoted.joined(separator: ", ") + "]"
        guard oneLine.count > 80 else { return oneLine }
        var lines: [String] = []
        var current = ""
        for item in quoted {
            if !current.isEmpty, current.count + item.count + 2 > 96 {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? "\(item)," : " \(item),"
        }
        if !current.isEmpty { lines.append(current) }
        return "[\n" + lines.map { "  \($0)\n" }.joined() + "]"
    }

    /// Whole numbers print as integers (`10`), others in Swift's shortest round-trip form.
    static func toml(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return String(d)
    }

    static func tomlKey(_ key: String) -> String {
        let bare = !key.isEmpty && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
        return bare ? key : toml(key)
    }
}
