import EdgyModel
import EdgyStore
import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Keeps the store healthy: attempts whose worker died (its lease expired) are recorded `lost`
/// and their tasks re-queued; finished tasks and blob uploads older than the retention period are
/// removed, and then every blob nothing refers to.
public struct Janitor: Service {
    let store: any TaskStore
    let notifier: TaskNotifier
    let interval: Duration
    let retention: Duration
    let retryDelay: Duration
    let logger: Logger

    public init(
        store: any TaskStore, notifier: TaskNotifier, interval: Duration = .seconds(5),
        retention: Duration = .seconds(7 * 24 * 3600), retryDelay: Duration = .seconds(1), logger: Logger
    ) {
        self.store = store
        self.notifier = notifier
        self.interval = interval
        self.retention = retention
        self.retryDelay = retryDelay
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await sweep()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass: reclaim expired leases, purge old finished tasks, collect unreferenced blobs.
    public func sweep(now: Date = Date()) async {
        do {
            let reclaimed = try await store.reclaimLeases(expiredBefore: now, ownedBy: nil, retryDelay: retryDelay)
            if !reclaimed.isEmpty {
                logger.warning("reclaimed expired leases", metadata: ["tasks": "\(reclaimed.count)"])
                // Back in the queue, or failed for good: waiters and workers alike look.
                for id in reclaimed { notifier.changed(id, .unknown) }
            }
            let (queued, running) = try await store.activeCounts(tenant: nil)
            Gauge(label: "edgy_tasks_queued").record(queued)
            Gauge(label: "edgy_tasks_running").record(running)
            let purged = try await store.purgeFinished(before: now.addingTimeInterval(-retention.seconds))
            if purged > 0 { logger.info("purged finished tasks", metadata: ["tasks": "\(purged)"]) }
            // Blobs go once no task and no upload younger than the retention refers to them.
            if let blobs = store as? any BlobStore {
                let deleted = try await blobs.collectGarbage(uploadsBefore: now.addingTimeInterval(-retention.seconds))
                if deleted > 0 { logger.info("deleted unreferenced blobs", metadata: ["blobs": "\(deleted)"]) }
            }
        } catch {
            logger.error("janitor sweep failed", metadata: ["error": "\(error)"])
        }
    }
}
