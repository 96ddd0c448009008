import EdgyStore
import EdgyStorePostgres
import EdgyTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The PostgreSQL the tests use: `EDGY_TEST_POSTGRES_URL`, or else a throwaway server started
/// once per test process with `scripts/postgres-test-server` and stopped at exit (a watchdog in
/// the script stops it too if this process dies without running its exit handlers).
public enum PostgresTestServer {
    private static let startedDirectory = Mutex<String?>(nil)

    public static let script = TestSupport.repositoryRoot + "/scripts/postgres-test-server"

    public static let url: String = {
        if let url = ProcessInfo.processInfo.environment["EDGY_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        let directory = "/tmp/edgy-pg-test-\(getpid())"
        let url: String
        do {
            url = try shell(script, "start", directory, "--owner-pid", "\(getpid())")
        } catch {
            fatalError("\(error)")
        }
        guard url.hasPrefix("postgres://") else { fatalError("scripts/postgres-test-server printed no URL: \(url)") }
        startedDirectory.withLock { $0 = directory }
        atexit { PostgresTestServer.stop() }
        return url
    }()

    /// Stops the server this process started, if any.
    public static func stop() {
        guard let directory = startedDirectory.withLock({ $0.take() }) else { return }
        _ = try? shell(script, "stop", directory)
    }

    /// `url` with another database.
    public static func url(database: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + database
        return components.string!
    }

    public static let logger: Logger = {
        var logger = Logger(label: "edgy.test.postgres")
        logger.logLevel = ProcessInfo.processInfo.environment["EDGY_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }()

    /// Runs `body` with `count` stores (as many "hosts") on a new, migrated database, dropped
    /// afterwards.
    public static func withStores<T: Sendable>(
        _ count: Int = 1, configure: @Sendable (inout PostgresStoreConfiguration) -> Void = { _ in },
        _ body: @Sendable ([PostgresTaskStore], String) async throws -> T
    ) async throws -> T {
        let database = "edgy_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        _ = try await admin { client in
            // Identifiers cannot be bound; this one is ours, made of [a-z0-9_].
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: logger)
        }
        let databaseURL = url(database: database)
        let stores = try (0..<count).map { _ in
            var configuration = try PostgresStoreConfiguration(url: databaseURL)
            configure(&configuration)
            return PostgresTaskStore(configuration: configuration, notifier: TaskNotifier(), logger: logger)
        }
        let result: Result<T, any Error>
        result = await withTaskGroup(of: Void.self) { group in
            for store in stores { group.addTask { try? await store.run() } }
            defer { group.cancelAll() }
            do {
                try await stores[0].migrate()
                return .success(try await body(stores, databaseURL))
            } catch {
                return .failure(error)
            }
        }
        _ = try? await admin { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"), logger: logger)
        }
        return try result.get()
    }

    public static func withStore<T: Sendable>(_ body: @Sendable (PostgresTaskStore) async throws -> T) async throws -> T {
        try await withStores(1) { stores, _ in try await body(stores[0]) }
    }

    /// A client on the server's `postgres` database, for DDL and for killing connections. It gives
    /// up after 30 s (a server out of connections makes the pool retry forever).
    public static func admin<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let configuration = try PostgresStoreConfiguration(url: url)
        let client = PostgresClient(configuration: configuration.client, backgroundLogger: logger)
        return try await withDeadline(.seconds(30), PostgresStoreError("the test server's admin connection did not answer within 30 s")) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await body(client)
            }
        }
    }

    /// Ends every server connection to `database` (what a restarting server or a network cut does).
    @discardableResult
    public static func terminateConnections(to database: String) async throws -> Int {
        return try await admin { client in
            let rows = try await client.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database) AND pid <> pg_backend_pid()",
                logger: logger
            ).collect()
            return rows.count
        }
    }
}

/// Runs a command through `system(3)` and returns its standard output, trimmed. (Foundation's
/// `Process.waitUntilExit` can miss the exit of a script that leaves a daemon behind.)
@discardableResult
public func shell(_ executable: String, _ arguments: String...) throws -> String {
    let output = "/tmp/edgy-pg-shell-\(getpid())-\(UUID().uuidString)"
    defer { unlink(output) }
    let quoted = ([executable] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    // `timeout`: a script that never returns fails the test instead of hanging the run.
    let status = system("timeout --kill-after=10 300 " + quoted.joined(separator: " ") + " >" + output)
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    guard status == 0 else {
        throw PostgresStoreError("\(executable) \(arguments.joined(separator: " ")) failed (status \(status))")
    }
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension PostgresTestServer {
    /// A fresh, migrated database with one running store on it, for the shared contract suite.
    /// `close` stops the store and drops the database.
    public static func openStore() async throws -> (store: PostgresTaskStore, database: String, close: @Sendable () -> Void) {
        let database = "edgy_contract_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        _ = try await admin { client in
            // Identifiers cannot be bound; this one is ours, made of [a-z0-9_].
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: logger)
        }
        let store = PostgresTaskStore(
            configuration: try PostgresStoreConfiguration(url: url(database: database)), notifier: TaskNotifier(), logger: logger)
        let running = Task { try? await store.run() }
        try await store.migrate()
        return (store, database, {
            running.cancel()
            Task {
                _ = await running.value
                _ = try? await admin { client in
                    try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"), logger: logger)
                }
            }
        })
    }
}

extension PostgresTestServer {
    /// Runs one statement on `database` (a test's own), e.g. to damage a row as a disk error would.
    public static func execute(_ sql: String, database: String) async throws {
        let configuration = try PostgresStoreConfiguration(url: url(database: database))
        let client = PostgresClient(configuration: configuration.client, backgroundLogger: logger)
        try await withDeadline(.seconds(30), PostgresStoreError("the test server did not answer within 30 s")) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            }
        }
    }
}
