import EdgyAuth
import EdgyModel
import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `/v1/tasks`: create (JSON or multipart, `?wait`), list, get, output, events, cancel, delete.
struct TaskController: Sendable {
    let service: TaskService

    func register(_ routes: RouteRegistrar) {
        routes.on(.post, "v1/tasks", use: create)
        routes.on(.get, "v1/tasks", use: list)
        routes.on(.get, "v1/tasks/{id}", use: get)
        routes.on(.delete, "v1/tasks/{id}", use: delete)
        routes.on(.post, "v1/tasks/{id}/cancel", use: cancel)
        routes.on(.get, "v1/tasks/{id}/stdout") { request, context in try await output(request, context, .stdout) }
        routes.on(.get, "v1/tasks/{id}/stderr") { request, context in try await output(request, context, .stderr) }
        routes.on(.get, "v1/tasks/{id}/events", use: events)
        routes.on(.get, "v1/tasks/{id}/deliveries", use: deliveries)
    }

    @Sendable func create(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let wait = try service.waitSeconds(request)
        let kind = try TaskRequestDecoding.kind(of: request)
        let body = try await service.collectBody(request, tenant: principal.tenant)
        let draft = try await service.decodeDraft(body.bytes, kind)
        return try await createResponding(
            draft, fallbackPolicy: service.config.defaultPolicy, principal: principal, context: context, wait: wait, body: body.share)
    }

    /// Creates the task: 201 with it; with `?wait`, 200 with the finished task or 202 with the task as it is.
    /// The body's share of the buffered bytes goes back once the task is stored (or refused), not
    /// after the wait.
    func createResponding(
        _ draft: TaskDraft, fallbackPolicy: String, principal: Principal, context: EdgyRequestContext, wait: Double?,
        body: BodyShare
    ) async throws -> Response {
        let id = UUID()
        let create = {
            defer { body.release() }
            return try await service.create(
                draft, principal: principal, fallbackPolicy: fallbackPolicy, logger: context.logger, audit: context.audit, id: id,
                tokenHash: context.tokenHash)
        }
        guard let wait, wait > 0 else { return try taskResponse(try await create(), status: .created) }
        guard let current = try await service.createAndWait(id, seconds: wait, create: create) else { throw APIError.taskNotFound(id.uuidString) }
        return try taskResponse(current.record, lastReportJSON: current.lastReportJSON, status: current.record.status.isFinished ? .ok : .accepted)
    }

    @Sendable func list(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let query = request.uri.queryParameters
        var filter = TaskQuery(tenant: principal.tenant, limit: service.config.defaultPageSize)
        filter.summaries = true
        if let status = query.get("status") {
            guard let parsed = TaskStatus(rawValue: status) else {
                throw APIError.badRequest("status must be one of \(TaskStatus.allCases.map(\.rawValue).joined(separator: ", "))", field: "status")
            }
            filter.status = parsed
        }
        filter.policy = query.get("policy")
        filter.name = query.get("name")
        if let limit = query.get("limit") {
            guard let parsed = Int(limit), (1...service.config.maxPageSize).contains(parsed) else {
                throw APIError.badRequest("limit must be an integer from 1 to \(service.config.maxPageSize)", field: "limit")
            }
            filter.limit = parsed
        }
        // `cursor=` (empty) is schema-valid and means the first page.
        if let cursor = query.get("cursor"), !cursor.isEmpty {
            guard TaskCursor(encoded: cursor) != nil else { throw APIError.badRequest("cursor is not one this server gave", field: "cursor") }
            filter.cursor = cursor
        }
        let page = try await service.deps.store.list(filter)
        return try taskPageResponse(page.tasks, nextCursor: page.nextCursor)
    }

    @Sendable func get(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        return try taskResponse(try await service.task(try context.parameters.require("id"), principal: principal))
    }

    @Sendable func cancel(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let task = try await service.task(try context.parameters.require("id"), principal: principal)
        let updated = try await service.cancel(task, principal: principal, logger: context.logger)
        // A running attempt is killed by its worker shortly: 202 until the task is finished.
        return try taskResponse(updated, status: updated.status.isFinished ? .ok : .accepted)
    }

    @Sendable func delete(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let task = try await service.task(try context.parameters.require("id"), principal: principal)
        _ = try await service.delete(task, principal: principal, logger: context.logger)
        return Response(status: .noContent)
    }

    /// The last attempt's output: its report's, or while it runs, the output events so far.
    func output(_ request: Request, _ context: EdgyRequestContext, _ kind: TaskEvent.Kind) async throws -> Response {
        let principal = try context.requirePrincipal()
        let task = try await service.task(try context.parameters.require("id"), principal: principal)
        if let last = task.attempts.last, let report = last.report {
            return outputResponse(kind == .stdout ? report.stdout : report.stderr)
        }
        guard let attempt = task.attempts.last?.number else { return textResponse([]) }
        var bytes: [UInt8] = []
        var after: Int64 = 0
        while true {
            let batch = try await service.deps.store.events(taskID: task.id, after: after, limit: 1000)
            for event in batch where event.kind == kind && event.attempt == attempt { bytes += Array(event.data.utf8) }
            guard let last = batch.last, batch.count == 1000 else { break }
            after = last.sequence
        }
        return textResponse(bytes)
    }

    @Sendable func events(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let task = try await service.task(try context.parameters.require("id"), principal: principal)
        var after: Int64 = 0
        if let header = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard let parsed = Int64(header.trimmingCharacters(in: .whitespaces)), parsed >= 0 else {
                throw APIError.badRequest("Last-Event-ID must be an event id this server sent", field: "Last-Event-ID")
            }
            after = parsed
        }
        let stream = EventStream(service: service, taskID: task.id, after: after)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in try await stream.run(&writer) })
    }

    /// `GET /v1/tasks/{id}/deliveries`: the task's webhook, its state and every try.
    @Sendable func deliveries(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let task = try await service.task(try context.parameters.require("id"), principal: principal)
        guard let store = service.deps.store as? any DeliveryStore, let delivery = try await store.delivery(taskID: task.id) else {
            throw APIError(.notFound, code: "no_webhook", "task \(task.id.uuidString.lowercased()) has no callback_url")
        }
        return try jsonResponse(DeliveriesResource(delivery))
    }
}

/// A task's webhook as `GET /v1/tasks/{id}/deliveries` shows it (never its key).
struct DeliveriesResource: Encodable {
    struct Try: Encodable {
        var attempt: Int
        var at: String
        var statusCode: Int?
        var error: String?
        var durationMs: Int
        enum CodingKeys: String, CodingKey { case attempt, at, error, statusCode = "status_code", durationMs = "duration_ms" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(at, forKey: .at)
            try c.encode(statusCode, forKey: .statusCode)
            try c.encode(error, forKey: .error)
            try c.encode(durationMs, forKey: .durationMs)
        }
    }

    var callbackURL: String
    var state: String
    var nextAttemptAt: String?
    var deliveries: [Try]

    init(_ delivery: WebhookDelivery) {
        callbackURL = delivery.url
        state = delivery.state.rawValue
        nextAttemptAt = delivery.state == .pending ? delivery.nextAttemptAt.map(timestamp) : nil
        deliveries = delivery.attempts.map {
            Try(attempt: $0.number, at: timestamp($0.at), statusCode: $0.statusCode, error: $0.error, durationMs: $0.durationMs)
        }
    }

    enum CodingKeys: String, CodingKey { case state, deliveries, callbackURL = "callback_url", nextAttemptAt = "next_attempt_at" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(callbackURL, forKey: .callbackURL)
        try c.encode(state, forKey: .state)
        try c.encode(nextAttemptAt, forKey: .nextAttemptAt)
        try c.encode(deliveries, forKey: .deliveries)
    }
}
