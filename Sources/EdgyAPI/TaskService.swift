import EdgyAuth
import EdgyModel
import EdgyStore
import Foundation
import Hummingbird
import Logging

/// Task operations shared by the `/v1` and prototype routes: tenant scoping, store calls and
/// waking waiters.
struct TaskService: Sendable {
    let deps: APIDependencies
    let config: APIConfiguration
    /// Shared by every route that decodes a create-task body.
    let uploadGate: UploadGate
    /// Bounds the memory blob uploads hold: `maxConcurrentBlobUploads` × `maxBlobBytes`.
    let blobGate: UploadGate
    /// Bytes of create-task bodies held at once, across connections, and per tenant (`BodyShare`).
    let bodyBudget: BodyBudget
    /// The slow poll under every `watch`.
    let backstop: BackstopTicker

    init(deps: APIDependencies, config: APIConfiguration) {
        self.deps = deps
        self.config = config
        self.uploadGate = UploadGate(permits: config.maxConcurrentDecodes)
        self.blobGate = UploadGate(permits: config.maxConcurrentBlobUploads)
        // Never below one request's limit, or a body of that size could never be read.
        self.bodyBudget = BodyBudget(
            bytes: max(config.maxBufferedRequestBytes, config.maxRequestBytes),
            perTenant: max(config.maxBufferedRequestBytesPerTenant, config.maxRequestBytes))
        self.backstop = BackstopTicker(interval: config.pollInterval)
    }

    /// A create-task body in memory (at most `maxRequestBytes`), and its share of `bodyBudget`,
    /// to be released once its task is stored or refused.
    /// - Throws: `APIError` 413 beyond the limit, 408 when it trickles in, 429 when the tenant's
    ///   bodies hold their part of the budget, 503 when everyone's fill it.
    func collectBody(_ request: Request, tenant: String) async throws -> (bytes: [UInt8], share: BodyShare) {
        let share = BodyShare(budget: bodyBudget, tenant: tenant)
        let bytes = try await TaskRequestDecoding.collect(
            request, limit: config.maxRequestBytes, tooLarge: "the request body is larger than \(config.maxRequestBytes) bytes", share: share,
            config: config)
        return (bytes, share)
    }

    /// Reads a create-task body into a draft, holding an upload-gate permit while it decodes.
    /// - Throws: `APIError`: 400/413 from the decoders, 503 when no permit frees up in time.
    func decodeDraft(_ bytes: [UInt8], _ kind: TaskRequestDecoding.BodyKind, inputNamesFile: Bool = false) async throws -> TaskDraft {
        let config = self.config
        let decode = { @Sendable () throws(APIError) -> TaskDraft in
            switch kind {
            case .json: return try TaskRequestDecoding.draft(fromJSON: bytes)
            case .multipart(let boundary):
                return try TaskRequestDecoding.draft(fromMultipart: bytes, boundary: boundary, config: config, inputNamesFile: inputNamesFile)
            }
        }
        return try await uploadGate.run(wait: config.decodeWaitLimit, retryAfter: config.retryAfterSeconds) {
            try await BlockingWork.run(bytes: bytes.count) { try decode() }
        }
    }

    /// Validates and queues a task.
    /// - Throws: `APIError` for anything the draft gets wrong, 429 when the queue is full or the
    ///   tenant has used up a quota (`quota_exceeded`, `field` naming the quota).
    func create(
        _ draft: TaskDraft, principal: Principal, fallbackPolicy: String, logger: Logger, audit: AuditNote? = nil, id: UUID = UUID(),
        tokenHash: String? = nil
    ) async throws -> TaskRecord {
        audit?.update { $0.policy = draft.policy ?? fallbackPolicy }
        try Access.requireWriter(principal)
        let spec = try draft.validate(principal: principal, policies: deps.policies, config: config, fallbackPolicy: fallbackPolicy)
        try await checkBlobs(spec.files, tenant: principal.tenant)
        // Whole microseconds: what stores keep and page cursors carry, so a record reads back equal
        // and a cursor never lands between a task's stored and in-memory creation time.
        let now = StoreTime.rounded(Date())
        let record = TaskRecord(id: id, tenant: principal.tenant, spec: spec, createdAt: now)
        audit?.update { $0.taskID = record.id }
        let quota = config.tenantQuotas.quota(for: principal.tenant)
        let limits = QueueLimits(
            maxQueued: config.maxQueued, maxQueuedPerTenant: quota.maxQueued ?? config.maxQueuedPerTenant,
            maxStoredPerTenant: quota.maxStored, maxBytesPerTenant: quota.maxBytes)
        var dispatched = false
        do {
            // Signed with the key of the token that created the task (a task made without one,
            // by a test or a tool, is signed with the key of an empty hash).
            let callback = (draft.callbackURL ?? principal.callbackURL).map { TaskCallback(url: $0, secret: TokenSecret.webhookSecret(tokenHash: tokenHash ?? "")) }
            if let dispatcher = deps.dispatcher {
                dispatched = try await dispatcher.createAndDispatch(record, limits: limits, callback: callback)
            } else {
                try await deps.store.create(record, limits: limits, callback: callback)
            }
        } catch let error as StoreError where error.code == .queueFull {
            throw APIError.queueFull(error.message, retryAfter: config.retryAfterSeconds)
        } catch let error as StoreError where error.code == .blobNotFound {
            throw APIError.unprocessable("blob_not_found", error.message, field: error.field)
        } catch let error as StoreError where error.code == .quotaExceeded {
            // Waiting does not free a stored-task or byte quota; deleting tasks or retention does.
            throw APIError(.tooManyRequests, code: "quota_exceeded", error.message, field: error.quota)
        }
        // A task a local worker took is announced as running by that worker; one that waits is
        // announced now, which wakes a worker (here or on another host) to claim it.
        if !dispatched { deps.notifier.changed(record.id, .queued) }
        logger.info("task created", metadata: ["task": "\(record.id)", "policy": "\(spec.policy)", "files": "\(spec.files.count)"])
        return record
    }

    /// Every file given by reference is a blob of the tenant's, and together they fit `maxBlobBytes`
    /// (the worker holds them in memory for the jail). The store checks again as it inserts.
    func checkBlobs(_ files: [TaskFile], tenant: String) async throws {
        guard files.contains(where: { $0.blob != nil }) else { return }
        guard let blobs = deps.blobs else {
            throw APIError.unprocessable("blobs_unavailable", "this server keeps no blobs", field: "files")
        }
        var total: Int64 = 0
        for (index, file) in files.enumerated() {
            guard let sha256 = file.blob else { continue }
            guard let blob = try await blobs.blob(sha256: sha256, tenant: tenant) else {
                throw APIError.unprocessable("blob_not_found", StoreError.blobNotFound(sha256, field: "files[\(index)].blob").message, field: "files[\(index)].blob")
            }
            total += blob.size
        }
        guard total <= Int64(config.maxBlobBytes) else {
            throw APIError.tooLarge("a task's files by reference may hold at most \(config.maxBlobBytes) bytes together (these hold \(total))", field: "files")
        }
    }

    /// The principal's task as the API shows it (`TaskRecord.summary`: no inputs read), or 404 for
    /// unknown ids and other tenants' tasks alike.
    func task(_ idText: String, principal: Principal) async throws -> TaskRecord {
        guard let id = UUID(uuidString: idText), let task = try await deps.store.taskSummary(id: id), task.tenant == principal.tenant else {
            throw APIError.taskNotFound(idText)
        }
        return task
    }

    func cancel(_ task: TaskRecord, principal: Principal, logger: Logger) async throws -> TaskRecord {
        try Access.requireWriter(principal)
        guard let updated = try await deps.store.requestCancel(id: task.id, now: Date()) else { throw APIError.taskNotFound(task.id.uuidString) }
        deps.notifier.changed(task.id, updated.status.isFinished ? .ended : .cancelRequested)
        logger.info("task cancel requested", metadata: ["task": "\(task.id)", "status": "\(updated.status.rawValue)"])
        return updated
    }

    /// Cancels (a running attempt is killed by its worker) and removes the task.
    func delete(_ task: TaskRecord, principal: Principal, logger: Logger) async throws -> TaskRecord {
        try Access.requireWriter(principal)
        var last = task
        if !task.status.isFinished, let cancelled = try await deps.store.requestCancel(id: task.id, now: Date()) { last = cancelled }
        _ = try await deps.store.delete(id: task.id)
        deps.notifier.changed(task.id, .ended)
        logger.info("task deleted", metadata: ["task": "\(task.id)"])
        return last
    }

    /// `?wait=SECONDS`: nil when absent; 400 when not a non-negative number; clamped to the maximum.
    func waitSeconds(_ request: Request) throws(APIError) -> Double? {
        guard let text = request.uri.queryParameters.get("wait") else { return nil }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
            throw APIError.badRequest("wait must be a number of seconds", field: "wait")
        }
        return min(seconds, config.maxWaitSeconds)
    }

    /// Creates task `id` with `create`, then returns it once it has finished, or as it is when
    /// `seconds` pass first (or nil once deleted). It listens before the task exists, so a worker
    /// of this process that finishes the task at once still hands its record over.
    func createAndWait(_ id: UUID, seconds: Double, create: () async throws -> TaskRecord) async throws -> TaskNotifier.FinishedTask? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        // Being claimed or writing output does not end a task: only the end wakes the loop.
        return try await watch(id, only: [.ended]) { ticks in
            var iterator = ticks.makeAsyncIterator()
            var known: TaskRecord? = try await create()
            while true {
                // Finished in this process: the worker handed over the record it stored.
                if let finished = deps.notifier.takeFinished(id) { return finished }
                if known == nil { known = try await deps.store.taskSummary(id: id) }
                guard let task = known else { return nil }
                if task.status.isFinished || ContinuousClock.now >= deadline { return .init(record: task) }
                guard await iterator.next() != nil else { return .init(record: task) }
                known = nil
            }
        }
    }

    /// Runs `body` with a stream that ticks whenever the task changes (via the notifier) and at
    /// least every poll interval (`BackstopTicker`), so a missed wake-up costs latency, never correctness.
    func watch<T: Sendable>(
        _ id: UUID, only kinds: Set<TaskNotifier.Change>? = nil, _ body: (AsyncStream<UUID>) async throws -> T
    ) async throws -> T {
        // The backstop's ticks go into the notifier's own stream: a change reaches `body` in one hop.
        let (ticks, tick) = deps.notifier.changeStream(of: id, only: kinds)
        let key = backstop.add(id, tick)
        defer { backstop.remove(key) }
        return try await body(ticks)
    }
}
