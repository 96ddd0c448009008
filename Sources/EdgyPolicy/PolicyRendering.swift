import Crypto
import Foundation

extension Policy {
    /// The effective policy as TOML, every key explicit, in a fixed order: what `edgy policy show`
    /// prints. It stands on its own: the parent it `extends` is already applied, so it is named in
    /// a comment only, and loading the text anywhere gives an equal `Policy` (but for `extends`)
    /// with the same digest.
    public func renderTOML() -> String {
        var out = "# effective policy `\(name)`: every value below is already resolved\n"
        if let extends { out += "# (extends \(Self.toml(extends)), applied: this text needs no parent)\n" }
        out += "description = \(Self.toml(description))\n"
        return out + renderBody()
    }

    /// Hex SHA-256 of the canonical rendering (`description` and every table; not `name` or
    /// `extends`): it changes exactly when what the jail does changes, and is stable across key
    /// order, formatting and comments in the file.
    public var digest: String {
        let canonical = "description = \(Self.toml(description))\n" + renderBody()
        return SHA256.hash(data: Data(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private func renderBody() -> String {
        var out = "\n[run]\n"
        out += "command = \(Self.toml(run.command))\n"
        if let entry = run.entry { out += "entry = \(Self.toml(entry))\n" }
        out += "workdir = \(Self.toml(run.workdir))\n"
        let env = run.env.sorted { $0.key < $1.key }.map { "\(Self.tomlKey($0.key)) = \(Self.toml($0.value))" }
        out += env.isEmpty ? "env = {}\n" : "env = { \(env.joined(separator: ", ")) }\n"
        out += "task_env = \(Self.toml(run.taskEnv))\n"
        out += "allow_command_override = \(run.allowCommandOverride)\n"
        out += "hostname = \(Self.toml(run.hostname))\n"

        out += "\n[limits]\n"
        out += "wall_time_s = \(Self.toml(limits.wallTimeS))\n"
        out += "cpu_time_s = \(Self.toml(limits.cpuTimeS))\n"
        out += "memory_mib = \(limits.memoryMib)\n"
        out += "pids = \(limits.pids)\n"
        out += "open_files = \(limits.openFiles)\n"
        out += "file_size_mib = \(limits.fileSizeMib)\n"
        out += "workdir_mib = \(limits.workdirMib)\n"
        out += "tmp_mib = \(limits.tmpMib)\n"
        out += "stdout_kib = \(limits.stdoutKib)\n"
        out += "stderr_kib = \(limits.stderrKib)\n"
        out += "output_overflow = \(Self.toml(limits.outputOverflow.rawValue))\n"
        out += "pending_signals = \(limits.pendingSignals)\n"
        out += "mqueue_kib = \(limits.mqueueKib)\n"
        out += "memlock_kib = \(limits.memlockKib)\n"

        for mount in mounts {
            out += "\n[[mounts]]\nsource = \(Self.toml(mount.source))\n"
            out += "destination = \(Self.toml(mount.destination))\nrequired = \(mount.required)\n"
        }
        for tmpfs in tmpfs {
            out += "\n[[tmpfs]]\ndestination = \(Self.toml(tmpfs.destination))\nsize_mib = \(tmpfs.sizeMib)\n"
        }

        out += "\n[network]\nmode = \(Self.toml(network.mode.rawValue))\n"
        out += "\n[identity]\nuid = \(identity.uid)\ngid = \(identity.gid)\nuser_namespace = \(identity.userNamespace)\n"
        out += "\n[seccomp]\n"
        out += "default_action = \(Self.toml(seccomp.defaultAction.description))\n"
        out += "allow = \(Self.toml(seccomp.allow))\n"
        out += "deny = \(Self.toml(seccomp.deny))\n"
        out += "socket_families = \(Self.toml(seccomp.socketFamilies))\n"
        out += "ioctl_deny = \(Self.toml(seccomp.ioctlDeny))\n"
        out += "allow_namespace_clone = \(seccomp.allowNamespaceClone)\n"
        out += "\n[retry]\nmax_attempts = \(retry.maxAttempts)\nretry_on = \(Self.toml(retry.retryOn))\n"
        out += "\n[access]\nroles = \(Self.toml(access.roles))\n"
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
