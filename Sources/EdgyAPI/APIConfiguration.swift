import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import Logging

/// Limits and defaults of the HTTP API. Every cap here is enforced before anything reaches the store.
public struct APIConfiguration: Sendable {
    /// Queued tasks the store may hold; a create beyond it answers 429 with `Retry-After`.
    public var maxQueued: Int
    /// Queued tasks per tenant; nil for no per-tenant cap.
    public var maxQueuedPerTenant: Int?
    /// Per-tenant quotas of stored tasks and bytes (and queued tasks, overriding
    /// `maxQueuedPerTenant`), checked atomically with the insert.
    public var tenantQuotas = TenantQuotas()
    /// Files in one task (uploaded, unpacked from archives, and the entry file together).
    public var maxFilesPerTask: Int
    /// Bytes of all of a task's files plus its stdin.
    public var maxTaskBytes: Int
    /// Bytes of one request body (JSON with base64 is larger than the files it carries).
    public var maxRequestBytes: Int
    /// Bytes of create-task bodies held in memory at once, across all connections (never less
    /// than `maxRequestBytes`). A body's share is taken before its bytes arrive; one that finds
    /// no room within `decodeWaitLimit` is answered 503 `busy` with `Retry-After`.
    public var maxBufferedRequestBytes: Int = 512 << 20
    /// The part of `maxBufferedRequestBytes` one tenant's arriving bodies may hold (never less
    /// than `maxRequestBytes`): past it, 429 `too_many_bodies` at once.
    public var maxBufferedRequestBytesPerTenant: Int = 128 << 20
    /// A body must arrive at `minBodyBytesPerSecond` on average once `bodyRateGrace` has passed
    /// (408 `too_slow` otherwise), so a body trickled in cannot hold its share for long.
    public var minBodyBytesPerSecond: Int = 16 << 10
    public var bodyRateGrace: Duration = .seconds(10)
    /// Entries (files and directories) in one archive.
    public var maxArchiveEntries: Int
    /// Unpacked bytes of one archive.
    public var maxArchiveBytes: Int
    /// Unpacked size / packed size of one compressed archive or entry; beyond it the upload is a bomb.
    public var maxRatio: Int
    /// Bytes of file contents one request may produce: uploaded files and every archive entry,
    /// across all parts. Counted while inflating, so a bomb stops at this many bytes (413).
    public var maxUploadBytes: Int
    /// Archive parts (`.tar`, `.tar.gz`, `.tgz`, `.zip`) in one multipart request (413 beyond).
    public var maxArchivesPerRequest: Int
    /// Request bodies decoded (parsed, unpacked) at once; others wait up to `decodeWaitLimit`,
    /// then get 503 with `Retry-After`.
    public var maxConcurrentDecodes: Int
    public var decodeWaitLimit: Duration
    /// The longest `?wait=` a client may ask for; longer asks are clamped to it.
    public var maxWaitSeconds: Double
    /// The policy of `/v1` tasks that name none.
    public var defaultPolicy: String
    /// The policy of the prototype routes (`POST /`, `PUT /`): the prototype ran JavaScript.
    public var prototypePolicy: String
    /// Page size of `GET /v1/tasks` when the client gives no `limit`, and the most it may ask for.
    public var defaultPageSize: Int
    public var maxPageSize: Int
    /// Seconds sent in `Retry-After` with a 429.
    public var retryAfterSeconds: Int
    /// How often waiters (`?wait`, SSE) re-read the store when no change notice arrives.
    public var pollInterval: Duration
    /// Failed authentications one client address may make per `authFailureWindow` before it is
    /// answered 429 until the window ends; 0 turns the limit off.
    public var authFailureLimit: Int = 10
    public var authFailureWindow: Duration = .seconds(60)
    /// Bytes of one blob (`POST /v1/blobs`), and of a task's files by reference together.
    public var maxBlobBytes: Int = 64 << 20
    /// Blob uploads read at once (each holds up to `maxBlobBytes`); others wait up to
    /// `decodeWaitLimit`, then get 503 with `Retry-After`.
    public var maxConcurrentBlobUploads: Int = 2
    /// Where tasks' `callback_url` may point besides public addresses (`webhook_allow`).
    public var callbackAllowlist = CallbackAllowlist()
    /// Whether tasks may give a `callback_url` (`webhooks = "on"`).
    public var webhooksEnabled = true

    public init(
        maxQueued: Int = 10_000,
        maxQueuedPerTenant: Int? = nil,
        maxFilesPerTask: Int = 256,
        maxTaskBytes: Int = 16 << 20,
        maxRequestBytes: Int? = nil,
        maxArchiveEntries: Int = 1024,
        maxArchiveBytes: Int? = nil,
        maxRatio: Int = 100,
        maxWaitSeconds: Double = 60,
        defaultPolicy: String = "default",
        prototypePolicy: String = "node",
        defaultPageSize: Int = 50,
        maxPageSize: Int = 500,
        retryAfterSeconds: Int = 5,
        pollInterval: Duration = .milliseconds(250),
        maxUploadBytes: Int? = nil,
        maxArchivesPerRequest: Int = 16,
        maxConcurrentDecodes: Int? = nil,
        decodeWaitLimit: Duration = .seconds(2)
    ) {
        self.maxUploadBytes = maxUploadBytes ?? maxTaskBytes
        self.maxArchivesPerRequest = maxArchivesPerRequest
        self.maxConcurrentDecodes = maxConcurrentDecodes ?? 2 * ProcessInfo.processInfo.activeProcessorCount
        self.decodeWaitLimit = decodeWaitLimit
        self.maxQueued = maxQueued
        self.maxQueuedPerTenant = maxQueuedPerTenant
        self.maxFilesPerTask = maxFilesPerTask
        self.maxTaskBytes = maxTaskBytes
        // base64 grows data by 4/3; leave room for the JSON around it.
        self.maxRequestBytes = maxRequestBytes ?? (maxTaskBytes / 3 * 4 + (1 << 20))
        self.maxArchiveEntries = maxArchiveEntries
        self.maxArchiveBytes = maxArchiveBytes ?? maxTaskBytes
        self.maxRatio = maxRatio
        self.maxWaitSeconds = maxWaitSeconds
        self.defaultPolicy = defaultPolicy
        self.prototypePolicy = prototypePolicy
        self.defaultPageSize = defaultPageSize
        self.maxPageSize = maxPageSize
        self.retryAfterSeconds = retryAfterSeconds
        self.pollInterval = pollInterval
    }
}

/// What the API talks to. The daemon builds these once and hands them to `buildRouter`.
public struct APIDependencies: Sendable {
    public var store: any TaskStore
    public var tokens: any TokenStore
    public var policies: PolicyCatalog
    public var notifier: TaskNotifier
    public var logger: Logger
    /// Where authentication failures and task, token and policy actions are recorded.
    public var audit: AuditLog
    /// Whether the daemon can take work (store reachable, workers running), for `/readyz`.
    public var readiness: @Sendable () async -> Bool
    /// The daemons sharing the store, for `GET /v1/workers`.
    public var workers: (any WorkerRegistry)?
    /// The Prometheus text exposition for `GET /metrics`; nil answers 404.
    public var metrics: (@Sendable () -> String)?
    /// This host's dependency layers, for `GET/DELETE /v1/layers`; nil when it installs none.
    public var layers: (any LayerDirectory)?
    /// Uploaded blobs and collected output files: the task store, when it keeps them.
    public var blobs: (any BlobStore)?
    /// `POST /v1/policies/learn`; nil answers 503 (this process runs no jails).
    public var policyLearning: (any PolicyLearning)?
    /// This process's workers, which take a new task straight from its create when one is idle;
    /// nil: tasks are only queued (a process without workers, or a test's).
    public var dispatcher: (any TaskDispatcher)?

    public init(
        store: any TaskStore, tokens: any TokenStore, policies: PolicyCatalog, notifier: TaskNotifier,
        logger: Logger = Logger(label: "edgy.api"), audit: AuditLog = AuditLog(),
        readiness: @escaping @Sendable () async -> Bool = { true }, workers: (any WorkerRegistry)? = nil,
        metrics: (@Sendable () -> String)? = nil, layers: (any LayerDirectory)? = nil
    ) {
        self.metrics = metrics
        self.layers = layers
        self.audit = audit
        self.workers = workers
        self.store = store
        self.tokens = tokens
        self.policies = policies
        self.notifier = notifier
        self.logger = logger
        self.readiness = readiness
        self.blobs = store as? any BlobStore
    }
}

/// The dependency layers of this host, as the admin API shows and removes them.
public protocol LayerDirectory: Sendable {
    func summaries() -> [LayerSummary]
    func remove(_ key: String) -> LayerRemoval
}
