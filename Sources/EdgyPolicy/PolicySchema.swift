/// One key of a policy file. Every key is declared once, in `PolicySchema.keys`: the decoder,
/// `extends` merging, rendering, the vocabulary (`edgy policy explain`, the docs test) and the
/// API's limit overrides all read it from there, so a new key is handled everywhere or nowhere.
struct PolicyKey {
    typealias Decoder = (inout PolicyFileDecoder, TOMLNode, PolicyFileDecoder.Place) -> Void

    enum Shape {
        /// `name = value` at the top level or in a `[table]`.
        case scalar
        /// `[[name]]` entries, decoded, merged and rendered as a whole.
        case arrayTable
        /// A key inside `[[table]]` entries (read by the array table's decoder).
        case arrayTableField
    }

    let table: String
    let name: String
    var shape: Shape = .scalar
    /// Above this a number is a typo, not a policy.
    var maximum: Double?
    /// Reads the value into the decoder's policy, or reports what is wrong through the decoder.
    var decode: Decoder = { _, _, _ in }
    /// Copies the value of a file that sets the key over its parent's (`extends`).
    var merge: (inout Policy, Policy) -> Void = { _, _ in }
    /// The value as TOML, after `name = ` (the whole `[[name]]` blocks for an array table), or nil
    /// to leave it out.
    var render: (Policy) -> String? = { _ in nil }
    /// For a limit a task may tighten: how.
    var override: LimitOverride?

    /// "limits.memory_mib"; "description", "mounts" at the top level.
    var dotted: String { table.isEmpty ? name : "\(table).\(name)" }
}

/// How a task's `limits` override one policy limit: only ever tighter.
struct LimitOverride {
    let kind: LimitKind
    let tighten: (inout Policy.Limits, LimitOverrides) throws(PolicyOverrideError) -> Void
    /// The policy's value in the override vocabulary (what the API shows as a policy's ceilings).
    let copy: (inout LimitOverrides, Policy.Limits) -> Void
}

enum PolicySchema {
    /// Every key, in the order `edgy policy show` prints them (the digest depends on it). Built
    /// once: every task's limit overrides and every attempt's digest read it. `unsafe` only
    /// because key paths are not `Sendable`: the table is never written after it is built, and its
    /// closures capture nothing but key paths and constants.
    nonisolated(unsafe) static let keys: [PolicyKey] = {
        [
            PolicyKey(table: "", name: "description", decode: { d, node, place in
                if let s = d.string(node, place) { d.policy.description = s }
            }, merge: { $0.description = $1.description }),
            PolicyKey(table: "", name: "extends", decode: { d, node, place in d.readExtends(node, place) }),
        ] + runKeys + limitKeys + mountKeys + [
            .choice("network", "mode", \.network.mode),
            .strings("network", "allow", \.network.allow, read: readEgressAllow),
            .id("identity", "uid", \.identity.uid),
            .id("identity", "gid", \.identity.gid),
            .bool("identity", "user_namespace", \.identity.userNamespace),
        ] + seccompKeys + [
            .int("retry", "max_attempts", \.retry.maxAttempts, max: 100),
            .strings("retry", "retry_on", \.retry.retryOn) { d, node, place in
                d.choices(node, place, allowed: PolicyVocabulary.retryableOutcomes, what: "outcome")
            },
            .strings("access", "roles", \.access.roles) { d, node, place in
                d.choices(node, place, allowed: PolicyVocabulary.roles, what: "role")
            },
        ] + dependencyKeys + outputKeys
    }()

    /// `[outputs]`. A policy without paths renders none of these keys, so its digest is what it was
    /// before the table existed.
    private static var outputKeys: [PolicyKey] {
        func key(_ name: String, maximum: Double? = nil, _ decode: @escaping PolicyKey.Decoder, _ merge: @escaping (inout Policy, Policy) -> Void,
                 _ render: @escaping (Policy.Outputs) -> String?) -> PolicyKey {
            PolicyKey(table: "outputs", name: name, maximum: maximum, decode: decode, merge: merge,
                      render: { $0.outputs.enabled ? render($0.outputs) : nil })
        }
        return [
            key("paths", { d, node, place in
                guard let patterns = d.strings(node, place) else { return }
                var valid = true
                for pattern in patterns {
                    do throws(OutputPatternError) { _ = try OutputPattern(pattern) } catch {
                        d.error(place, error.description)
                        valid = false
                    }
                }
                if valid { d.policy.outputs.paths = patterns }
            }, { $0.outputs.paths = $1.outputs.paths }, { Policy.toml($0.paths) }),
            key("max_files", maximum: 10_000, { d, node, place in
                if let n = d.positiveInt(node, place) { d.policy.outputs.maxFiles = n }
            }, { $0.outputs.maxFiles = $1.outputs.maxFiles }, { String($0.maxFiles) }),
            key("max_mib", maximum: 1024, { d, node, place in
                if let n = d.positiveInt(node, place) { d.policy.outputs.maxMib = n }
            }, { $0.outputs.maxMib = $1.outputs.maxMib }, { String($0.maxMib) }),
            key("time_ms", maximum: 60_000, { d, node, place in
                if let n = d.positiveInt(node, place) { d.policy.outputs.timeMs = n }
            }, { $0.outputs.timeMs = $1.outputs.timeMs }, { String($0.timeMs) }),
        ]
    }

    /// `[dependencies]`. A policy without it (format `none`) renders none of these keys, so its
    /// digest is what it was before the table existed.
    private static var dependencyKeys: [PolicyKey] {
        func key(_ name: String, _ decode: @escaping PolicyKey.Decoder, _ merge: @escaping (inout Policy, Policy) -> Void,
                 _ render: @escaping (Policy.Dependencies) -> String?) -> PolicyKey {
            PolicyKey(table: "dependencies", name: name, decode: decode, merge: merge,
                      render: { $0.dependencies.enabled ? render($0.dependencies) : nil })
        }
        func relativeFile(_ d: inout PolicyFileDecoder, _ node: TOMLNode, _ place: PolicyFileDecoder.Place) -> String? {
            guard let s = d.string(node, place) else { return nil }
            if s.hasPrefix("/") || s.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == ".." || $0 == "." }) {
                d.error(place, "expected a relative path inside the working directory, got \"\(s)\"")
                return nil
            }
            return s
        }
        return [
            key("format", { d, node, place in
                if let s = d.choice(node, place, allowed: Policy.ManifestFormat.allCases.map(\.rawValue)) {
                    d.policy.dependencies.format = Policy.ManifestFormat(rawValue: s) ?? .none
                }
            }, { $0.dependencies.format = $1.dependencies.format }, { Policy.toml($0.format.rawValue) }),
            key("manifest", { d, node, place in
                if let s = relativeFile(&d, node, place) { d.policy.dependencies.manifest = s }
            }, { $0.dependencies.manifest = $1.dependencies.manifest }, { Policy.toml($0.manifest) }),
            key("lockfile", { d, node, place in
                if case .string("") = node { d.policy.dependencies.lockfile = ""; return }
                if let s = relativeFile(&d, node, place) { d.policy.dependencies.lockfile = s }
            }, { $0.dependencies.lockfile = $1.dependencies.lockfile }, { Policy.toml($0.lockfile) }),
            key("install", { d, node, place in
                guard let argv = d.strings(node, place) else { return }
                d.checkCommand(argv, place)
                d.policy.dependencies.install = argv
            }, { $0.dependencies.install = $1.dependencies.install }, { Policy.toml($0.install) }),
            key("registry", { d, node, place in
                guard let s = d.string(node, place) else { return }
                if s.isEmpty || !s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                    d.error(place, "expected the name of an entry of edgyd's dependency_registries (letters, digits, '-', '_'), got \"\(s)\"")
                    return
                }
                d.policy.dependencies.registry = s
            }, { $0.dependencies.registry = $1.dependencies.registry }, { Policy.toml($0.registry) }),
            key("allow", { d, node, place in
                if let entries = readEgressAllow(&d, node, place) { d.policy.dependencies.allow = entries }
            }, { $0.dependencies.allow = $1.dependencies.allow }, { Policy.toml($0.allow) }),
            key("mount", { d, node, place in
                guard let s = d.absolutePath(node, place) else { return }
                if s == "/" { d.error(place, "the layer cannot be mounted at /"); return }
                d.policy.dependencies.mount = s
            }, { $0.dependencies.mount = $1.dependencies.mount }, { Policy.toml($0.mount) }),
            key("env", { d, node, place in
                if let env = d.envTable(node, place) {
                    d.policy.dependencies.env = env
                    d.set(place)
                }
            }, { $0.dependencies.env = $1.dependencies.env }, { deps in
                let env = deps.env.sorted { $0.key < $1.key }.map { "\(Policy.tomlKey($0.key)) = \(Policy.toml($0.value))" }
                return env.isEmpty ? "{}" : "{ \(env.joined(separator: ", ")) }"
            }),
            key("runtime", { d, node, place in
                if let s = d.absolutePath(node, place) { d.policy.dependencies.runtime = s }
            }, { $0.dependencies.runtime = $1.dependencies.runtime }, { Policy.toml($0.runtime) }),
            key("layer_mib", { d, node, place in
                if let n = d.positiveInt(node, place) { d.policy.dependencies.layerMib = n }
            }, { $0.dependencies.layerMib = $1.dependencies.layerMib }, { String($0.layerMib) }),
            key("limits", { d, node, place in
                if let overrides = d.limitOverrides(node, place) { d.policy.dependencies.limits = overrides }
            }, { $0.dependencies.limits = $1.dependencies.limits }, { deps in
                let set = LimitOverrides.rendered(deps.limits)
                return set.isEmpty ? "{}" : "{ \(set.joined(separator: ", ")) }"
            }),
        ]
    }

    /// `[network] allow`: every entry must parse (EgressRule's grammar).
    private static func readEgressAllow(_ d: inout PolicyFileDecoder, _ node: TOMLNode, _ place: PolicyFileDecoder.Place) -> [String]? {
        guard let entries = d.strings(node, place) else { return nil }
        var valid = true
        for entry in entries {
            do {
                _ = try EgressRule.parse(entry)
            } catch {
                d.error(place, error.description)
                valid = false
            }
        }
        return valid ? entries : nil
    }

    nonisolated(unsafe) static let byDotted: [String: PolicyKey] = Dictionary(keys.map { ($0.dotted, $0) }, uniquingKeysWith: { first, _ in first })

    private static var runKeys: [PolicyKey] {
        [
            .strings("run", "command", \.run.command) { d, node, place in
                guard let argv = d.strings(node, place) else { return nil }
                d.checkCommand(argv, place)
                return argv
            },
            PolicyKey(table: "run", name: "entry", decode: { d, node, place in
                guard let s = d.string(node, place) else { return }
                if s.isEmpty || s.hasPrefix("/") || s.split(separator: "/").contains("..") {
                    d.error(place, "expected a relative path inside the working directory, got \"\(s)\"")
                } else { d.policy.run.entry = s }
            }, merge: { $0.run.entry = $1.run.entry }, render: { $0.run.entry.map(Policy.toml) }),
            .value("run", "workdir", \.run.workdir, render: Policy.toml) { d, node, place in
                guard let s = d.absolutePath(node, place) else { return nil }
                if s == "/" { d.error(place, "the working directory cannot be /"); return nil }
                return s
            },
            PolicyKey(table: "run", name: "env", decode: { d, node, place in d.walkEnv(node, place) },
                      merge: { $0.run.env.merge($1.run.env) { _, new in new } },
                      render: { policy in
                          let env = policy.run.env.sorted { $0.key < $1.key }.map { "\(Policy.tomlKey($0.key)) = \(Policy.toml($0.value))" }
                          return env.isEmpty ? "{}" : "{ \(env.joined(separator: ", ")) }"
                      }),
            .strings("run", "task_env", \.run.taskEnv) { d, node, place in
                guard let names = d.strings(node, place) else { return nil }
                for n in names where !PolicyFileDecoder.isEnvName(n) { d.error(place, "invalid environment variable name \"\(n)\"") }
                return names
            },
            .bool("run", "allow_command_override", \.run.allowCommandOverride),
            .value("run", "hostname", \.run.hostname, render: Policy.toml) { d, node, place in
                guard let s = d.string(node, place) else { return nil }
                let valid = !s.isEmpty && s.count <= 64 && !s.hasPrefix("-")
                    && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
                if !valid { d.error(place, "expected a hostname (letters, digits, '-', '.', at most 64), got \"\(s)\"") }
                return valid ? s : nil
            },
        ]
    }

    private static var limitKeys: [PolicyKey] {
        [
            .limit("wall_time_s", \.wallTimeS, \.wallTimeS, max: 86_400),
            .limit("cpu_time_s", \.cpuTimeS, \.cpuTimeS, max: 86_400),
            .limit("memory_mib", \.memoryMib, \.memoryMib, max: 65_536),
            .limit("pids", \.pids, \.pids, max: 32_768),
            .limit("open_files", \.openFiles, \.openFiles, max: 65_536),
            .limit("file_size_mib", \.fileSizeMib, \.fileSizeMib, max: 65_536),
            .limit("workdir_mib", \.workdirMib, \.workdirMib, max: 65_536),
            .limit("tmp_mib", \.tmpMib, \.tmpMib, max: 65_536),
            .limit("stdout_kib", \.stdoutKib, \.stdoutKib, max: 1_048_576),
            .limit("stderr_kib", \.stderrKib, \.stderrKib, max: 1_048_576),
            .outputOverflow,
            .limit("pending_signals", \.pendingSignals, \.pendingSignals, max: 4096),
            .limit("mqueue_kib", \.mqueueKib, \.mqueueKib, max: 65_536),
            .limit("memlock_kib", \.memlockKib, \.memlockKib, max: 65_536),
        ]
    }

    private static var mountKeys: [PolicyKey] {
        [
            PolicyKey(table: "", name: "mounts", shape: .arrayTable, decode: { d, node, _ in d.walkArrayTable("mounts", node) },
                      merge: { $0.mounts = $1.mounts },
                      render: { policy in
                          policy.mounts.map { mount in
                              "\n[[mounts]]\nsource = \(Policy.toml(mount.source))\n"
                                  + "destination = \(Policy.toml(mount.destination))\nrequired = \(mount.required)\n"
                          }.joined()
                      }),
            PolicyKey(table: "mounts", name: "source", shape: .arrayTableField),
            PolicyKey(table: "mounts", name: "destination", shape: .arrayTableField),
            PolicyKey(table: "mounts", name: "required", shape: .arrayTableField),
            PolicyKey(table: "", name: "tmpfs", shape: .arrayTable, decode: { d, node, _ in d.walkArrayTable("tmpfs", node) },
                      merge: { $0.tmpfs = $1.tmpfs },
                      render: { policy in
                          policy.tmpfs.map { "\n[[tmpfs]]\ndestination = \(Policy.toml($0.destination))\nsize_mib = \($0.sizeMib)\n" }.joined()
                      }),
            PolicyKey(table: "tmpfs", name: "destination", shape: .arrayTableField),
            PolicyKey(table: "tmpfs", name: "size_mib", shape: .arrayTableField, maximum: 65_536),
        ]
    }

    private static var seccompKeys: [PolicyKey] {
        [
            .value("seccomp", "default_action", \.seccomp.defaultAction, render: { Policy.toml($0.description) }) { d, node, place in
                guard let s = d.string(node, place) else { return nil }
                switch PolicyFileDecoder.seccompAction(s) {
                case .success(let action): return action
                case .failure(let problem): d.error(place, problem.message); return nil
                }
            },
            .strings("seccomp", "allow", \.seccomp.allow) { d, node, place in d.syscalls(node, place) },
            .strings("seccomp", "deny", \.seccomp.deny) { d, node, place in d.syscalls(node, place) },
            .strings("seccomp", "socket_families", \.seccomp.socketFamilies) { d, node, place in
                d.choices(node, place, allowed: PolicyVocabulary.socketFamilies, what: "socket family")
            },
            .strings("seccomp", "ioctl_deny", \.seccomp.ioctlDeny) { d, node, place in d.ioctls(node, place) },
            .bool("seccomp", "allow_namespace_clone", \.seccomp.allowNamespaceClone),
        ]
    }
}

// MARK: - Key kinds

extension PolicyKey {
    /// A scalar key stored at `path`: `read` checks the TOML value (reporting errors) and returns
    /// it, or nil when it is wrong.
    static func value<V>(
        _ table: String, _ name: String, _ path: WritableKeyPath<Policy, V>, maximum: Double? = nil,
        render: @escaping (V) -> String, read: @escaping (inout PolicyFileDecoder, TOMLNode, PolicyFileDecoder.Place) -> V?
    ) -> PolicyKey {
        PolicyKey(
            table: table, name: name, maximum: maximum,
            decode: { d, node, place in if let v = read(&d, node, place) { d.policy[keyPath: path] = v } },
            merge: { $0[keyPath: path] = $1[keyPath: path] },
            render: { render($0[keyPath: path]) })
    }

    static func int(_ table: String, _ name: String, _ path: WritableKeyPath<Policy, Int>, max: Double) -> PolicyKey {
        value(table, name, path, maximum: max, render: { String($0) }) { d, node, place in d.positiveInt(node, place) }
    }

    static func bool(_ table: String, _ name: String, _ path: WritableKeyPath<Policy, Bool>) -> PolicyKey {
        value(table, name, path, render: { String($0) }) { d, node, place in d.bool(node, place) }
    }

    static func id(_ table: String, _ name: String, _ path: WritableKeyPath<Policy, UInt32>) -> PolicyKey {
        value(table, name, path, render: { String($0) }) { d, node, place in d.id(node, place) }
    }

    static func strings(
        _ table: String, _ name: String, _ path: WritableKeyPath<Policy, [String]>,
        read: @escaping (inout PolicyFileDecoder, TOMLNode, PolicyFileDecoder.Place) -> [String]?
    ) -> PolicyKey {
        value(table, name, path, render: Policy.toml, read: read)
    }

    static func choice<V: RawRepresentable & CaseIterable>(
        _ table: String, _ name: String, _ path: WritableKeyPath<Policy, V>
    ) -> PolicyKey where V.RawValue == String {
        value(table, name, path, render: { Policy.toml($0.rawValue) }) { d, node, place in
            d.choice(node, place, allowed: V.allCases.map(\.rawValue)).flatMap(V.init(rawValue:))
        }
    }

    /// An integer `[limits]` key that a task may tighten through `field` of its overrides.
    static func limit(
        _ name: String, _ limit: WritableKeyPath<Policy.Limits, Int>, _ field: WritableKeyPath<LimitOverrides, Int?>, max: Double
    ) -> PolicyKey {
        tightenable(int("limits", name, (\Policy.limits as WritableKeyPath<Policy, Policy.Limits>).appending(path: limit), max: max), .wholeNumber, limit, field)
    }

    /// A `[limits]` number (seconds) that a task may tighten through `field` of its overrides.
    static func limit(
        _ name: String, _ limit: WritableKeyPath<Policy.Limits, Double>, _ field: WritableKeyPath<LimitOverrides, Double?>, max: Double
    ) -> PolicyKey {
        let key = value("limits", name, (\Policy.limits as WritableKeyPath<Policy, Policy.Limits>).appending(path: limit), maximum: max, render: Policy.toml) { d, node, place in
            d.positiveNumber(node, place)
        }
        return tightenable(key, .number, limit, field)
    }

    private static func tightenable<V: Comparable & Numeric>(
        _ key: PolicyKey, _ kind: LimitKind, _ limit: WritableKeyPath<Policy.Limits, V>, _ field: WritableKeyPath<LimitOverrides, V?>
    ) -> PolicyKey {
        var key = key
        let name = key.name
        key.override = LimitOverride(
            kind: kind,
            tighten: { out, overrides throws(PolicyOverrideError) in
                guard let value = overrides[keyPath: field] else { return }
                guard value > 0 else { throw PolicyOverrideError(key: name, requested: "\(value)", maximum: "> 0") }
                guard value <= out[keyPath: limit] else {
                    throw PolicyOverrideError(key: name, requested: "\(value)", maximum: "\(out[keyPath: limit])")
                }
                out[keyPath: limit] = value
            },
            copy: { $0[keyPath: field] = $1[keyPath: limit] })
        return key
    }

    /// `kill` is tighter than `truncate`.
    static var outputOverflow: PolicyKey {
        var key = choice("limits", "output_overflow", \.limits.outputOverflow)
        key.override = LimitOverride(
            kind: .choice,
            tighten: { out, overrides throws(PolicyOverrideError) in
                guard let overflow = overrides.outputOverflow else { return }
                guard overflow == .kill || out.outputOverflow == .truncate else {
                    throw PolicyOverrideError(key: "output_overflow", requested: overflow.rawValue, maximum: out.outputOverflow.rawValue)
                }
                out.outputOverflow = overflow
            },
            copy: { $0.outputOverflow = $1.outputOverflow })
        return key
    }
}
