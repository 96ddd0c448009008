/// Checks over the effective policy (after `extends`): contradictions that are errors, and
/// dangerous grants that are warnings. Each finding points at the file and line that set the key.
enum PolicyChecks {
    static func errors(_ policy: Policy, origins: [String: Origin], file: String) -> [PolicyDiagnostic] {
        var out: [PolicyDiagnostic] = []
        func add(_ key: String, _ shown: String, _ message: String) {
            let origin = origins[key]
            out.append(PolicyDiagnostic(file: origin?.file ?? file, line: origin?.line, key: shown, message: message))
        }
        if policy.run.entry == nil, policy.run.command.contains(where: { $0.contains("{entry}") }) {
            add("run.command", "[run] command", "uses {entry}, but [run] entry is not set")
        }
        let workdir = policy.run.workdir
        // The workdir and /tmp are tmpfs mounted after every [[mounts]] and [[tmpfs]] entry: one
        // at or under them would vanish beneath it.
        func scratch(_ destination: String) -> String? {
            [workdir, "/tmp"].first { destination == $0 || destination.hasPrefix($0 + "/") }
        }
        if policy.seccomp.defaultAction != .log {
            let allowed = SyscallCatalog.expand(policy.seccomp.allow).subtracting(SyscallCatalog.expand(policy.seccomp.deny))
            for name in PolicyVocabulary.jailStartSyscalls where !allowed.contains(name) {
                let key = origins["seccomp.deny"] != nil && SyscallCatalog.expand(policy.seccomp.deny).contains(name) ? "seccomp.deny" : "seccomp.allow"
                add(key, key == "seccomp.deny" ? "[seccomp] deny" : "[seccomp] allow",
                    "`\(name)` must be allowed: the jail calls it after loading the filter, to start the workload")
            }
        }
        for (index, tmpfs) in policy.tmpfs.enumerated() {
            guard let under = scratch(tmpfs.destination) else { continue }
            let key = origins["tmpfs.\(index)"] != nil ? "tmpfs.\(index)" : "tmpfs"
            add(key, "[[tmpfs]] destination",
                tmpfs.destination == under ? "\(tmpfs.destination) is already a tmpfs (the working directory or /tmp)"
                    : "\(tmpfs.destination) is under \(under), a tmpfs mounted over it")
        }
        for (index, mount) in policy.mounts.enumerated() {
            guard let under = scratch(mount.destination) else { continue }
            let key = origins["mounts.\(index)"] != nil ? "mounts.\(index)" : "mounts"
            add(key, "[[mounts]] destination",
                mount.destination == under ? "\(mount.destination) is the working directory or /tmp, which are writable tmpfs"
                    : "\(mount.destination) is under \(under), a writable tmpfs mounted over it: the mount would vanish")
        }
        let deps = policy.dependencies
        if deps.enabled {
            for (name, missing) in [("manifest", deps.manifest.isEmpty), ("install", deps.install.isEmpty), ("runtime", deps.runtime.isEmpty)] where missing {
                add("dependencies.format", "[dependencies] \(name)", "must be set when format is \"\(deps.format.rawValue)\"")
            }
            if deps.install.joined().contains("{registry}"), deps.registry.isEmpty {
                add("dependencies.install", "[dependencies] install", "uses {registry}, but [dependencies] registry is not set")
            }
            if let under = scratch(deps.mount) {
                add("dependencies.mount", "[dependencies] mount",
                    "\(deps.mount) is \(deps.mount == under ? "" : "under ")\(under), a writable tmpfs mounted over the layer")
            }
            if !deps.lockfile.isEmpty, deps.lockfile == deps.manifest {
                add("dependencies.lockfile", "[dependencies] lockfile", "must differ from the manifest")
            }
            do {
                _ = try policy.limits.applying(deps.limits)
            } catch {
                add("dependencies.limits", "[dependencies] limits", "\(error.description): the install step may only tighten [limits]")
            }
        }
        return out
    }

    static func warnings(_ policy: Policy, origins: [String: Origin], file: String) -> [PolicyDiagnostic] {
        var out: [PolicyDiagnostic] = []
        func add(_ key: String, _ shown: String, _ message: String, element: String? = nil) {
            let origin = origins[key]
            out.append(PolicyDiagnostic(severity: .warning, file: origin?.file ?? file, line: origin?.line, key: shown, message: message))
        }
        let seccomp = policy.seccomp
        let denied = SyscallCatalog.expand(seccomp.deny)
        let allowed = SyscallCatalog.expand(seccomp.allow).subtracting(denied)
        for name in PolicyVocabulary.dangerousSyscalls where allowed.contains(name) {
            if seccomp.allow.contains(name) {
                add("seccomp.allow", "[seccomp] allow", "allows `\(name)`, which can be used to escape or attack the host")
            } else {
                let via = seccomp.allow.filter { $0.hasPrefix("@") && SyscallCatalog.expand([$0]).contains(name) }
                add("seccomp.allow", "[seccomp] allow",
                    "allows `\(name)` through \(via.map { "`\($0)`" }.joined(separator: ", ")), which can be used to escape or attack the host")
            }
        }
        for name in seccomp.allow where !name.hasPrefix("@") && seccomp.deny.contains(name) {
            add("seccomp.deny", "[seccomp] deny", "`\(name)` is both allowed and denied; deny wins")
        }
        if seccomp.allowNamespaceClone {
            add("seccomp.allow_namespace_clone", "[seccomp] allow_namespace_clone",
                "lets the workload create namespaces, widening the kernel surface it can reach")
        }
        if seccomp.defaultAction == .log {
            add("seccomp.default_action", "[seccomp] default_action",
                "\"log\" allows every syscall and only logs it; for debugging a policy, not for running tasks")
        }
        if !policy.identity.userNamespace, policy.identity.uid == 0 {
            add(origins["identity.uid"] != nil ? "identity.uid" : "identity.user_namespace", "[identity] uid",
                "uid 0 without a user namespace is real root on the host")
        }
        if policy.network.mode != .none, policy.limits.pids > 256 || policy.limits.memoryMib > 4096 {
            add("network.mode", "[network] mode",
                "network \"\(policy.network.mode.rawValue)\" with pids \(policy.limits.pids) and memory_mib \(policy.limits.memoryMib): a large networked jail; check this is intended")
        }
        let network = policy.network
        if network.mode == .egress {
            for rule in network.rules { if let broad = rule.broadness { add("network.allow", "[network] allow", "a broad grant: \(broad)") } }
            if network.allow.isEmpty {
                add("network.mode", "[network] mode", "\"egress\" with an empty allow list reaches nothing; use \"loopback\" or list destinations in allow")
            }
        } else if !network.allow.isEmpty {
            add("network.allow", "[network] allow", "is used only with mode = \"egress\"; with \"\(network.mode.rawValue)\" the jail reaches none of it")
        }
        return PolicyLoader.sorted(out)
    }
}
