import EdgyAuth
import EdgyModel
import EdgyStore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Why the PostgreSQL store could not do what it was asked (the database refused or is away).
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Where the store connects, and how it behaves while the database is away.
public struct PostgresStoreConfiguration: Sendable {
    public var client: PostgresClient.Configuration
    /// An operation that cannot get a connection within this time throws (the pool itself would
    /// wait up to a minute while the database is unreachable).
    public var operationTimeout: Duration
    /// The longest pause between two attempts to re-open the LISTEN connection.
    public var maximumListenBackoff: Duration

    public init(client: PostgresClient.Configuration, operationTimeout: Duration = .seconds(10), maximumListenBackoff: Duration = .seconds(5)) {
        self.client = client
        self.operationTimeout = operationTimeout
        self.maximumListenBackoff = maximumListenBackoff
    }

    /// From `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`.
    /// Without `sslmode`, TLS is disabled on loopback hosts and preferred elsewhere.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql", let host = components.host, !host.isEmpty
        else { throw PostgresStoreError("not a postgres:// URL: \(Self.redacted(url))") }
        let username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let database = path.isEmpty ? nil : path
        let sslMode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value
        let loopback = host == "localhost" || host == "127.0.0.1" || host == "::1"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode ?? (loopback ? "disable" : "prefer") {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        case let other: throw PostgresStoreError("unknown sslmode \(other)")
        }
        var client = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: username, password: password, database: database, tls: tls)
        client.options.connectTimeout = .seconds(5)
        self.init(client: client)
    }

    /// The URL without its password, for messages.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "…"
        return components.string ?? "postgres://…"
    }
}

/// Tasks, leases, events, tokens and workers in PostgreSQL, for many hosts sharing one database
/// Claims lock with `FOR UPDATE SKIP LOCKED`; every change to a task is announced
/// with `NOTIFY edgy_tasks, '<task id>'`, and a LISTEN connection feeds the announcements of every
/// host to `notifier`.
///
/// Lifecycle: create it, `run()` it (it is a `Service`: put it first in the `ServiceGroup`), then
/// `migrate()` before the first use. Operations throw while the database is away and succeed
/// again once it is back.
///
/// Times are stored as integer microseconds since 1970 (`Date` rounded to the microsecond), which
/// keeps ordering and cursors exact.
public final class PostgresTaskStore: TaskStore, TokenStore, Service, Sendable {
    /// The NOTIFY channel.
    public static let channel = "edgy_tasks"

    /// A notice says how the task changed (`<id>:queued`), so that only a task that became
    /// claimable wakes other hosts' idle workers: each would otherwise run a claim for every
    /// claim, output chunk and finish of every host. A bare `<id>` (an older edgyd) is `unknown`.
    static let noticeKinds: [(TaskNotifier.Change, String)] = [
        (.queued, "queued"), (.running, "running"), (.output, "output"), (.cancelRequested, "cancel"), (.ended, "ended"),
    ]

    static func noticeSuffix(_ change: TaskNotifier.Change) -> String {
        noticeKinds.first { $0.0 == change }.map { ":" + $0.1 } ?? ""
    }

    /// The task and the change a NOTIFY payload names; nil for a payload that is not one.
    static func notice(_ payload: String) -> (UUID, TaskNotifier.Change)? {
        let parts = payload.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let id = UUID(uuidString: String(parts[0])) else { return nil }
        guard parts.count == 2 else { return (id, .unknown) }
        return (id, noticeKinds.first { $0.1 == parts[1] }?.0 ?? .unknown)
    }

    let client: PostgresClient
    let configuration: PostgresStoreConfiguration
    let logger: Logger
    /// Told about every task change of every host sharing the database.
    public let notifier: TaskNotifier
    private let listening = Mutex(false)

    /// True while the LISTEN connection is up (for health checks, and tests that must not race it).
    public var isListening: Bool { listening.withLock { $0 } }

    public init(configuration: PostgresStoreConfiguration, notifier: TaskNotifier = TaskNotifier(), logger: Logger) {
        self.configuration = configuration
        self.client = PostgresClient(configuration: configuration.client, backgroundLogger: logger)
        self.notifier = notifier
        self.logger = logger
    }

    public convenience init(url: String, notifier: TaskNotifier = TaskNotifier(), logger: Logger) throws {
        try self.init(configuration: PostgresStoreConfiguration(url: url), notifier: notifier, logger: logger)
    }

    /// Runs the connection pool and the LISTEN loop until cancelled or, in a `ServiceGroup`,
    /// until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.client.run() }
                group.addTask { await self.listenLoop() }
            }
        }
    }

    /// Holds one connection that LISTENs and forwards each notification to `notifier`. A dropped
    /// connection is re-opened with exponential backoff; notices missed meanwhile cost waiters
    /// latency only (they also poll).
    private func listenLoop() async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        backoff = .milliseconds(50)
                        listening.withLock { $0 = true }
                        defer { listening.withLock { $0 = false } }
                        logger.debug("listening", metadata: ["channel": "\(Self.channel)"])
                        for try await notification in notifications {
                            if let (id, change) = Self.notice(notification.payload) { notifier.changed(id, change) }
                        }
                    }
                }
                if Task.isCancelled { return }
            } catch {
                if Task.isCancelled { return }
                logger.warning("LISTEN connection lost; re-listening", metadata: ["error": "\(String(reflecting: error))", "backoff": "\(backoff)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, configuration.maximumListenBackoff)
        }
    }

    /// Applies the migrations this database lacks, in one transaction under an advisory lock, so
    /// that hosts starting together migrate once. Idempotent.
    public func migrate() async throws {
        try await transaction { connection in
            let logger = self.logger
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresMigrations.lockKey))", logger: logger)
            try await connection.query(PostgresMigrations.createTable, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM edgy_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            for migration in PostgresMigrations.all where !applied.contains(migration.version) {
                logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                for statement in migration.statements {
                    try await connection.query(statement, logger: logger)
                }
                try await connection.query(
                    "INSERT INTO edgy_migrations (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(Date().micros))",
                    logger: logger)
            }
        }
    }

    // MARK: Plumbing

    /// Runs `body` in a transaction on one pooled connection, with the operation timeout. A
    /// `StoreError` thrown by `body` is rethrown as is (after the rollback).
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        try await withTimeout {
            do {
                return try await self.client.withTransaction(logger: self.logger) { connection in try await body(connection) }
            } catch let error as PostgresTransactionError {
                if let storeError = error.closureError as? StoreError { throw storeError }
                throw error
            }
        }
    }

    /// One statement on a pooled connection, rows collected, with the operation timeout.
    @discardableResult
    func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await withTimeout {
            try await self.client.query(query, logger: self.logger).collect()
        }
    }

    /// Gives up on `body` after `operationTimeout`, even when it does not honour cancellation.
    private func withTimeout<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let timeout = configuration.operationTimeout
        return try await withDeadline(timeout, PostgresStoreError("the database did not answer within \(timeout)"), body)
    }
}

extension Date {
    /// Microseconds since 1970, as stored.
    var micros: Int64 { StoreTime.micros(self) }

    init(micros: Int64) { self = StoreTime.date(micros: micros) }
}
