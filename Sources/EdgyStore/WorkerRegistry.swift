import Foundation
import Synchronization

/// A daemon that runs tasks from the store, as it registered itself.
public struct WorkerInfo: Codable, Sendable, Hashable {
    /// The worker id its leases carry.
    public var id: String
    public var host: String
    /// How many tasks it runs at once.
    public var slots: Int
    /// `uname -r`.
    public var kernel: String
    /// 1 or 2; nil when the host has no usable cgroups.
    public var cgroupVersion: Int?
    public var startedAt: Date
    public var lastHeartbeat: Date

    public init(id: String, host: String, slots: Int, kernel: String, cgroupVersion: Int?, startedAt: Date, lastHeartbeat: Date? = nil) {
        self.id = id
        self.host = host
        self.slots = slots
        self.kernel = kernel
        self.cgroupVersion = cgroupVersion
        self.startedAt = startedAt
        self.lastHeartbeat = lastHeartbeat ?? startedAt
    }
}

/// Which daemons share a store, and when each was last heard from ("Many hosts", item 3).
public protocol WorkerRegistry: Sendable {
    /// Inserts the worker, or replaces it when it registers again (a restart).
    func registerWorker(_ worker: WorkerInfo) async throws
    /// Records that the worker is alive. False when it is not registered.
    @discardableResult
    func heartbeatWorker(id: String, now: Date) async throws -> Bool
    /// Every registered worker, by id.
    func listWorkers() async throws -> [WorkerInfo]
}

/// The registry of a single host (the embedded SQLite store): only this daemon is there.
public final class LocalWorkerRegistry: WorkerRegistry {
    private let workers = Mutex<[String: WorkerInfo]>([:])

    public init() {}

    public func registerWorker(_ worker: WorkerInfo) async throws {
        workers.withLock { $0[worker.id] = worker }
    }

    @discardableResult
    public func heartbeatWorker(id: String, now: Date) async throws -> Bool {
        workers.withLock { workers in
            guard workers[id] != nil else { return false }
            workers[id]?.lastHeartbeat = now
            return true
        }
    }

    public func listWorkers() async throws -> [WorkerInfo] {
        workers.withLock { $0.values.sorted { $0.id < $1.id } }
    }
}
