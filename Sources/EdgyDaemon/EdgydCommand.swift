import ArgumentParser
import EdgySystem
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus

/// `edgyd`: the root-run daemon that runs tasks in jails.
public struct EdgydCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "edgyd",
        abstract: "Run tasks from the HTTP API in jails.",
        discussion: "Settings come from the defaults, then --config FILE (TOML), then EDGY_* environment variables, then these flags.")

    @Option(help: "A TOML configuration file.") var config: String?
    @Option(help: "HOST:PORT to listen on (default 127.0.0.1:8080).") var listen: String?
    @Option(name: .customLong("state-dir"), help: "State directory (default /var/lib/edgy).") var stateDir: String?
    @Option(help: "Policy directory (default /etc/edgy/policies).") var policies: String?
    @Option(help: "Attempts run at once (default: the number of cores).") var workers: Int?
    @Option(name: .customLong("api-threads"), help: "Threads serving the API and edgyd's Swift tasks (default: a quarter of the cores, at least 1).")
    var apiThreads: Int?
    @Option(name: .customLong("queue-capacity"), help: "Queued tasks accepted before 429.") var queueCapacity: Int?
    @Option(name: .customLong("retention-hours"), help: "Hours finished tasks are kept.") var retentionHours: Double?
    @Option(help: "`sqlite` or a postgres:// URL.") var store: String?
    @Option(name: .customLong("worker-id"), help: "The name this daemon holds leases under.") var workerID: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    public init() {}

    public func run() async throws {
        try await Self.run(settings: settings(), logLevel: logLevel)
    }

    /// The settings from the defaults, `--config`, the environment and the flags, checked.
    func settings() throws(ValidationError) -> DaemonConfiguration {
        var settings = DaemonConfiguration()
        do {
            if let config { try settings.apply(file: config) }
            try settings.apply(environment: ProcessInfo.processInfo.environment)
            let flags: [(String, String?)] = [
                ("listen", listen), ("state_dir", stateDir), ("policies", policies), ("workers", workers.map(String.init)),
                ("api_threads", apiThreads.map(String.init)),
                ("queue_capacity", queueCapacity.map(String.init)), ("retention_hours", retentionHours.map { String($0) }),
                ("store", store), ("worker_id", workerID),
            ]
            for case let (key, value?) in flags { try settings.set(key, value, source: "--" + key.replacingOccurrences(of: "_", with: "-")) }
            try settings.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return settings
    }

    static func run(settings: DaemonConfiguration, logLevel: String) async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "edgyd")
        // Attempts, durations and queue depth go to one registry, exported at GET /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        do {
            try await Daemon(configuration: settings, logger: logger, metrics: { registry.emitToString() }).run()
        } catch let error as ConfigurationError {
            logger.critical("cannot start: \(error.description)")
            throw ExitCode(78)  // EX_CONFIG
        }
    }
}

/// The `edgyd` executable's entry point, in two halves around the first `await`.
public enum EdgydMain {
    /// The command line and the settings, read before any Swift task exists.
    public struct Prepared: Sendable {
        let settings: DaemonConfiguration
        let logLevel: String
    }

    /// Reads the command line and the settings, and makes SwiftNIO's event loops, `api_threads` of
    /// them, Swift's global executor, so that a request's handler, the store's transactions and the
    /// workers' tasks run where the request was read, instead of hopping to Swift's own pool and
    /// back. Must run on the main thread before any task is started: `main.swift` calls it first.
    /// Exits, as `edgyd` always has, on `--help` or on a bad flag or setting.
    public static func prepare() -> Prepared {
        // Output collection reads a megabyte per attempt: 0.3–0.5 ms of page faults otherwise.
        keepFreedMemoryForReuse()
        do {
            var parsed = try EdgydCommand.parseAsRoot()
            guard let command = parsed as? EdgydCommand else {
                try parsed.run()  // `--help` and the like: they print and exit
                EdgydCommand.exit()
            }
            let settings = try command.settings()
            runSwiftTasksOnEventLoops(threads: settings.apiThreads)
            return Prepared(settings: settings, logLevel: command.logLevel)
        } catch {
            EdgydCommand.exit(withError: error)
        }
    }

    public static func run(_ prepared: Prepared) async {
        do {
            try await EdgydCommand.run(settings: prepared.settings, logLevel: prepared.logLevel)
        } catch {
            EdgydCommand.exit(withError: error)
        }
    }

    /// `NIOSingletons`' event loop group, the one the API's server, PostgreSQL and webhook
    /// deliveries use, gets `threads` loops and becomes Swift's global executor.
    static func runSwiftTasksOnEventLoops(threads: Int) {
        NIOSingletons.groupLoopCountSuggestion = threads
        if !EventLoopGlobalExecutor.install() {
            // Only on a runtime without the hook: Swift's own pool serves, as it did before.
            FileHandle.standardError.write(Data("edgyd: Swift tasks stay on Swift's own thread pool: this runtime has no global executor hook\n".utf8))
        }
    }
}
