import EdgyJail
import EdgyNetwork
import EdgyPolicy
import EdgyStore
import Foundation
import TOMLKit

/// `edgyd`'s settings. Each comes, in increasing precedence, from its default, the configuration
/// file (`--config`, TOML, keys as below), the environment (`EDGY_` + the key in capitals) and
/// the command line.
public struct DaemonConfiguration: Sendable, Hashable {
    /// `host:port` to listen on.
    public var listen: String = "127.0.0.1:8080"
    /// Database, admin token and other state.
    public var stateDirectory: String = "/var/lib/edgy"
    public var policyDirectory: String = "/etc/edgy/policies"
    /// Attempts run at once.
    public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Threads that serve the API and run every Swift task of edgyd (SwiftNIO's event loops, which
    /// edgyd makes Swift's global executor). Jails run on threads of their own.
    public var apiThreads: Int = DaemonConfiguration.defaultAPIThreads
    /// Queued tasks accepted before the API answers 429.
    public var queueCapacity: Int = 10_000
    /// Finished tasks are removed after this many hours.
    public var retentionHours: Double = 168
    /// `sqlite` (a file in the state directory) or a `postgres://` URL.
    public var store: String = "sqlite"
    /// The name this daemon holds leases under; default: host name and state directory.
    public var workerID: String?
    /// Running attempts get this long to finish on SIGTERM before they are killed and re-queued.
    public var shutdownGraceSeconds: Double = 10
    /// Cgroup parent group name (one per daemon on a host).
    public var cgroupParent: String = "edgy"
    /// Jails kept ready per namespace shape, so an attempt starts without waiting for namespace
    /// and cgroup set-up (0 turns the pool off).
    public var jailPool: Int = 2
    /// How long a worker's claim on a task lasts without a heartbeat: after a crash, another
    /// worker (or this one, restarted) takes the task back after at most this long.
    public var leaseSeconds: Double = 30
    /// Queued tasks one tenant may have before its creates answer 429 (`queue_full`).
    public var tenantMaxQueued: Int? = 1_000
    /// Attempts one tenant may have running at once (on all hosts sharing the store); its other
    /// tasks wait in the queue.
    public var tenantMaxRunning: Int? = 64
    /// Tasks one tenant may keep stored in any status, until deleted or removed by retention;
    /// beyond it creates answer 429 `quota_exceeded`.
    public var tenantMaxStored: Int? = 10_000
    /// Bytes one tenant may keep stored (files, stdin and output of all its tasks, queued and
    /// finished); beyond it creates answer 429 `quota_exceeded`.
    public var tenantMaxBytes: Int64? = 1 << 30
    /// Per-tenant overrides of the four settings above, from `[tenants.NAME]` tables
    /// (`max_queued`, `max_stored`, `max_bytes`).
    public var tenantOverrides: [String: TenantQuotas.Quota] = [:]
    /// Failed authentications one client address may make per minute before its further failures
    /// are answered 429 until the minute ends (0 turns the limit off).
    public var authFailureLimit: Int = 10
    /// `auto`: egress policies run when the host has nftables and veth (else they are refused at
    /// load, with the reason); `off`: refused always.
    public var egress: String = "auto"
    /// Egress jails' addresses, nftables table, host interface prefix, resolver port and fixed
    /// answers (`egress_hosts = "name=10.1.2.3,other=10.1.2.4"`); docs/network.md.
    public var egressRange: String = "10.231.0.0/16"
    public var egressTable: String = "edgy"
    public var egressInterfacePrefix: String = "edgy"
    public var egressResolverPort: Int = 5300
    public var egressHosts: String = ""
    /// Where jails are cloned: `auto` by `edgy-forkserver` installed beside edgyd (in process, with
    /// a warning, when it is missing), `off` in edgyd itself, or the path of the fork server.
    public var forkServer: String = "auto"
    /// Where policies' install steps fetch packages: `NAME=URL` entries joined by commas
    /// (`pypi=http://mirror.internal/simple/`); a policy's `[dependencies] registry` names one.
    public var dependencyRegistries: String = "pypi=https://pypi.org/simple/,npm=https://registry.npmjs.org/"
    /// The dependency layers this host keeps on disk (`state_dir/layers`), least recently used
    /// evicted first above this.
    public var dependencyCacheMib: Int = 4096
    /// The largest blob a client may upload (`POST /v1/blobs`); a task's files by reference may
    /// hold this much together.
    public var maxBlobMib: Int = 64
    /// Client connections open at once; more wait in the kernel's listen backlog until one closes.
    public var maxConnections: Int = 4096
    /// Client connections one address (an IPv6 /64) may hold open; 0: no limit. Behind a reverse
    /// proxy every connection has the proxy's address: raise it, or turn it off there.
    public var maxConnectionsPerAddress: Int = 256
    /// Seconds a connection may stay idle (between requests, or still sending a request's head)
    /// before it is closed. A response in progress (`?wait`, an event stream) is not idle.
    public var idleTimeoutSeconds: Double = 60
    /// Create-task bodies held in memory at once, across connections; a body that finds no room
    /// within two seconds is answered 503 `busy`. One tenant's bodies may hold a quarter of it
    /// (at least one request's limit); past that, 429 `too_many_bodies`.
    public var maxBufferedRequestMib: Int = 512
    /// Where tasks' `callback_url` may point besides public addresses: IPv4 addresses and CIDRs,
    /// IPv6 addresses and host names, joined by commas (docs/webhooks.md).
    public var webhookAllow: String = ""
    /// `on`: tasks may give a `callback_url`; `off`: one is refused (400) and nothing is delivered.
    public var webhooks: String = "on"
    /// Tries of one webhook delivery, the first included.
    public var webhookMaxAttempts: Int = 6
    /// The wait before a delivery's second try; each later one doubles (±50% jitter), up to an hour.
    public var webhookRetryBaseMs: Int = 5000

    public init() {}

    /// A quarter of the cores, at least one. A task costs the API and the store about a third of
    /// what its jail costs the kernel, so a quarter of the cores keeps up with jails on the rest;
    /// more threads only wake each other (see docs/performance.md, *One thread for the API*).
    public static var defaultAPIThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 4) }

    /// The keys of the file and the environment, for errors and docs.
    public static let keys = [
        "listen", "state_dir", "policies", "workers", "api_threads", "queue_capacity", "retention_hours", "store", "worker_id",
        "shutdown_grace_s", "cgroup_parent", "jail_pool", "lease_s", "tenant_max_queued", "tenant_max_running",
        "tenant_max_stored", "tenant_max_bytes", "auth_failure_limit", "egress", "egress_range", "egress_table",
        "egress_interface_prefix", "egress_resolver_port", "egress_hosts", "fork_server", "dependency_registries",
        "dependency_cache_mib", "max_blob_mib", "max_connections", "max_connections_per_address", "idle_timeout_s",
        "max_buffered_request_mib", "webhooks", "webhook_allow", "webhook_max_attempts", "webhook_retry_base_ms",
    ]

    /// `webhook_allow` as an allowlist.
    public func callbackAllowlist() throws(ConfigurationError) -> CallbackAllowlist {
        do {
            return try CallbackAllowlist.parse(webhookAllow.split(separator: ",").map(String.init).filter { !$0.isEmpty })
        } catch {
            throw ConfigurationError(error.message)
        }
    }

    /// `dependency_registries` as a table.
    public func registries() throws(ConfigurationError) -> [String: String] {
        var out: [String: String] = [:]
        for entry in dependencyRegistries.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty,
                  parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }),
                  let url = URLComponents(string: parts[1]), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false
            else {
                throw ConfigurationError("dependency_registries: expected NAME=http(s)://HOST[:PORT]/PATH entries joined by commas, got \"\(entry)\"")
            }
            out[parts[0]] = parts[1]
        }
        return out
    }

    /// The fork server's executable, or nil to clone jails in edgyd (`off`, or `auto` without one
    /// beside edgyd).
    public func forkServerExecutable() -> String? {
        switch forkServer {
        case "off": nil
        case "auto": ForkServer.besideExecutable()
        default: forkServer
        }
    }

    /// The egress settings, or nil with `egress = "off"`.
    public func egressConfiguration() throws(ConfigurationError) -> EgressConfiguration? {
        guard ["auto", "off"].contains(egress) else { throw ConfigurationError("egress must be \"auto\" or \"off\", got \"\(egress)\"") }
        if egress == "off" { return nil }
        guard let range = IPv4Network.parse(egressRange) else {
            throw ConfigurationError("egress_range must be an IPv4 CIDR such as 10.231.0.0/16, got \"\(egressRange)\"")
        }
        guard (1...65535).contains(egressResolverPort) else {
            throw ConfigurationError("egress_resolver_port must be between 1 and 65535, got \(egressResolverPort)")
        }
        var hosts: [String: [UInt32]] = [:]
        for entry in egressHosts.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, EgressRule.isHostName(parts[0]), let address = IPv4Network.parseAddress(parts[1]) else {
                throw ConfigurationError("egress_hosts: expected NAME=IPV4 entries joined by commas, got \"\(entry)\"")
            }
            hosts[parts[0].lowercased(), default: []].append(address)
        }
        let configuration = EgressConfiguration(
            range: range, table: egressTable, interfacePrefix: egressInterfacePrefix,
            resolverPort: UInt16(egressResolverPort), hosts: hosts)
        if let problem = configuration.problem { throw ConfigurationError(problem) }
        return configuration
    }

    /// The keys of a `[tenants.NAME]` table.
    public static let tenantKeys = ["max_queued", "max_stored", "max_bytes"]

    /// The quotas the API enforces: the defaults above and the per-tenant overrides.
    public var tenantQuotas: TenantQuotas {
        TenantQuotas(
            defaults: .init(maxQueued: tenantMaxQueued, maxStored: tenantMaxStored, maxBytes: tenantMaxBytes),
            overrides: tenantOverrides)
    }

    /// Applies a TOML configuration file.
    public mutating func apply(file path: String) throws(ConfigurationError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError("cannot read configuration file \(path)")
        }
        let table: TOMLTable
        do {
            table = try TOMLGuard.parse(text)
        } catch {
            throw ConfigurationError("\(path)\(error.line.map { ":\($0)" } ?? ""): \(error.message)")
        }
        for key in table.keys {
            if key == "tenants" {
                try applyTenants(table[key]?.table, path: path)
                continue
            }
            guard Self.keys.contains(key) else {
                throw ConfigurationError("\(path): unknown key `\(key)` (known: \(Self.keys.joined(separator: ", ")))")
            }
            let value = table[key]!
            let text: String
            if let string = value.string {
                text = string
            } else if let int = value.int {
                text = String(int)
            } else if let double = value.double {
                text = String(double)
            } else {
                throw ConfigurationError("\(path): `\(key)` must be a string or a number")
            }
            try set(key, text, source: path)
        }
    }

    /// `[tenants.NAME]` tables: per-tenant quota overrides.
    private mutating func applyTenants(_ tenants: TOMLTable?, path: String) throws(ConfigurationError) {
        guard let tenants else { throw ConfigurationError("\(path): `tenants` must be a table of `[tenants.NAME]` tables") }
        for name in tenants.keys {
            guard let table = tenants[name]?.table else {
                throw ConfigurationError("\(path): `tenants.\(name)` must be a table (`[tenants.\(name)]`)")
            }
            var quota = TenantQuotas.Quota()
            for key in table.keys {
                guard let value = table[key]?.int, value >= 1 else {
                    throw ConfigurationError("\(path): `tenants.\(name).\(key)` must be a whole number of at least 1")
                }
                switch key {
                case "max_queued": quota.maxQueued = value
                case "max_stored": quota.maxStored = value
                case "max_bytes": quota.maxBytes = Int64(value)
                default:
                    throw ConfigurationError("\(path): unknown key `tenants.\(name).\(key)` (known: \(Self.tenantKeys.joined(separator: ", ")))")
                }
            }
            tenantOverrides[name] = quota
        }
    }

    /// Applies `EDGY_*` environment variables.
    public mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        for key in Self.keys {
            if let value = environment["EDGY_" + key.uppercased()] {
                try set(key, value, source: "EDGY_" + key.uppercased())
            }
        }
    }

    public mutating func set(_ key: String, _ value: String, source: String) throws(ConfigurationError) {
        func number<T: LosslessStringConvertible>(_: T.Type) throws(ConfigurationError) -> T {
            guard let parsed = T(value) else { throw ConfigurationError("\(source): `\(key)` must be a number, got `\(value)`") }
            return parsed
        }
        switch key {
        case "listen": listen = value
        case "state_dir": stateDirectory = value
        case "policies": policyDirectory = value
        case "workers": workers = try number(Int.self)
        case "api_threads": apiThreads = try number(Int.self)
        case "queue_capacity": queueCapacity = try number(Int.self)
        case "retention_hours": retentionHours = try number(Double.self)
        case "store": store = value
        case "worker_id": workerID = value
        case "shutdown_grace_s": shutdownGraceSeconds = try number(Double.self)
        case "cgroup_parent": cgroupParent = value
        case "jail_pool": jailPool = try number(Int.self)
        case "lease_s": leaseSeconds = try number(Double.self)
        case "tenant_max_queued": tenantMaxQueued = try number(Int.self)
        case "tenant_max_running": tenantMaxRunning = try number(Int.self)
        case "tenant_max_stored": tenantMaxStored = try number(Int.self)
        case "tenant_max_bytes": tenantMaxBytes = try number(Int64.self)
        case "auth_failure_limit": authFailureLimit = try number(Int.self)
        case "egress": egress = value
        case "egress_range": egressRange = value
        case "egress_table": egressTable = value
        case "egress_interface_prefix": egressInterfacePrefix = value
        case "egress_resolver_port": egressResolverPort = try number(Int.self)
        case "egress_hosts": egressHosts = value
        case "fork_server": forkServer = value
        case "dependency_registries": dependencyRegistries = value
        case "dependency_cache_mib": dependencyCacheMib = try number(Int.self)
        case "max_blob_mib": maxBlobMib = try number(Int.self)
        case "max_connections": maxConnections = try number(Int.self)
        case "max_connections_per_address": maxConnectionsPerAddress = try number(Int.self)
        case "idle_timeout_s": idleTimeoutSeconds = try number(Double.self)
        case "max_buffered_request_mib": maxBufferedRequestMib = try number(Int.self)
        case "webhooks": webhooks = value
        case "webhook_allow": webhookAllow = value
        case "webhook_max_attempts": webhookMaxAttempts = try number(Int.self)
        case "webhook_retry_base_ms": webhookRetryBaseMs = try number(Int.self)
        default: throw ConfigurationError("\(source): unknown key `\(key)`")
        }
    }

    /// Checks values that no type can: an operator gets a message, not a crash.
    public func validate() throws(ConfigurationError) {
        _ = try listenAddress()
        guard workers >= 1 && workers <= 1024 else { throw ConfigurationError("workers must be between 1 and 1024, got \(workers)") }
        guard (1...256).contains(apiThreads) else { throw ConfigurationError("api_threads must be between 1 and 256, got \(apiThreads)") }
        guard leaseSeconds >= 1 else { throw ConfigurationError("lease_s must be at least 1 second, got \(leaseSeconds)") }
        guard (0...64).contains(jailPool) else { throw ConfigurationError("jail_pool must be between 0 and 64, got \(jailPool)") }
        guard authFailureLimit >= 0 else { throw ConfigurationError("auth_failure_limit must be 0 (off) or more, got \(authFailureLimit)") }
        guard queueCapacity >= 1 else { throw ConfigurationError("queue_capacity must be at least 1") }
        _ = try egressConfiguration()
        _ = try registries()
        _ = try callbackAllowlist()
        guard ["on", "off"].contains(webhooks) else { throw ConfigurationError("webhooks must be \"on\" or \"off\", got \"\(webhooks)\"") }
        guard (1...50).contains(webhookMaxAttempts) else {
            throw ConfigurationError("webhook_max_attempts must be between 1 and 50, got \(webhookMaxAttempts)")
        }
        guard (10...3_600_000).contains(webhookRetryBaseMs) else {
            throw ConfigurationError("webhook_retry_base_ms must be between 10 and 3600000, got \(webhookRetryBaseMs)")
        }
        guard (1...4096).contains(maxBlobMib) else { throw ConfigurationError("max_blob_mib must be between 1 and 4096, got \(maxBlobMib)") }
        guard (16...1_000_000).contains(maxConnections) else {
            throw ConfigurationError("max_connections must be between 16 and 1000000, got \(maxConnections)")
        }
        guard maxConnectionsPerAddress >= 0 else {
            throw ConfigurationError("max_connections_per_address must be 0 (no limit) or more, got \(maxConnectionsPerAddress)")
        }
        guard idleTimeoutSeconds >= 0.1 && idleTimeoutSeconds <= 86_400 else {
            throw ConfigurationError("idle_timeout_s must be between 0.1 and 86400, got \(idleTimeoutSeconds)")
        }
        guard (16...65_536).contains(maxBufferedRequestMib) else {
            throw ConfigurationError("max_buffered_request_mib must be between 16 and 65536, got \(maxBufferedRequestMib)")
        }
        guard dependencyCacheMib >= 1 else { throw ConfigurationError("dependency_cache_mib must be at least 1, got \(dependencyCacheMib)") }
        guard ["auto", "off"].contains(forkServer) || forkServer.hasPrefix("/") else {
            throw ConfigurationError("fork_server must be \"auto\", \"off\" or an absolute path, got \"\(forkServer)\"")
        }
        let tenantLimits: [(String, Int64?)] = [
            ("tenant_max_queued", tenantMaxQueued.map(Int64.init)), ("tenant_max_running", tenantMaxRunning.map(Int64.init)),
            ("tenant_max_stored", tenantMaxStored.map(Int64.init)), ("tenant_max_bytes", tenantMaxBytes),
        ]
        for (key, value) in tenantLimits {
            if let value, value < 1 { throw ConfigurationError("\(key) must be at least 1, got \(value)") }
        }
        guard retentionHours > 0 else { throw ConfigurationError("retention_hours must be positive") }
        guard store == "sqlite" || store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") else {
            throw ConfigurationError("store must be `sqlite` or a postgres:// URL, got `\(store)`")
        }
        guard stateDirectory.hasPrefix("/") else { throw ConfigurationError("state_dir must be an absolute path") }
    }

    /// `listen` split into host and port.
    public func listenAddress() throws(ConfigurationError) -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port)
        else {
            throw ConfigurationError("listen must be HOST:PORT, got `\(listen)`")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
