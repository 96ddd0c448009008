import EdgyAuth
import EdgyModel
import Foundation
import HTTPTypes
import Hummingbird

/// The prototype's routes, kept so its README's curl commands work (with a bearer token):
///
/// - `POST /` with JSON `{"name", "input"}`: `input` is code for the entry file of
///   `APIConfiguration.prototypePolicy` (`node` by default: the prototype ran JavaScript). A
///   `"policy"` key, and every other `/v1` field, is accepted too.
/// - `PUT /` multipart: `file` parts, `name`, and `input` = the name of the uploaded file to run
///   (it is copied to the policy's entry path, `main.js` for `node`). Without `input`, a single
///   uploaded file is the entry; without `name`, the entry file's name is the task's.
///   The README's `-F "name:task1" -F "input:task.js"` is refused by curl itself ("option -F: is
///   badly used here", exit 2, nothing is sent); `-F name=task1 -F input=task.js` is the working form.
/// - `GET /{id}`: the task. `DELETE /{id}`: cancels and deletes it, answering with the task as it
///   was last (status `cancelled` when it had not finished).
///
/// Answers are the `/v1` task JSON; `POST /` and `PUT /` answer 201 (and honour `?wait` as `/v1` does).
struct PrototypeController: Sendable {
    let service: TaskService

    func register(_ routes: RouteRegistrar) {
        routes.on(.post, "", use: post)
        routes.on(.put, "", use: put)
        routes.on(.get, "{id}", use: TaskController(service: service).get)  // same answer as GET /v1/tasks/{id}
        routes.on(.delete, "{id}", use: delete)
    }

    @Sendable func post(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let wait = try service.waitSeconds(request)
        guard case .json = try TaskRequestDecoding.kind(of: request) else {
            throw APIError.unsupportedMediaType("POST / takes application/json; use PUT / for multipart uploads")
        }
        let body = try await service.collectBody(request, tenant: principal.tenant)
        let draft = try await service.decodeDraft(body.bytes, .json)
        return try await TaskController(service: service).createResponding(
            draft, fallbackPolicy: service.config.prototypePolicy, principal: principal, context: context, wait: wait, body: body.share)
    }

    @Sendable func put(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let wait = try service.waitSeconds(request)
        guard case .multipart(let boundary) = try TaskRequestDecoding.kind(of: request) else {
            throw APIError.unsupportedMediaType("PUT / takes multipart/form-data; use POST / for JSON")
        }
        let body = try await service.collectBody(request, tenant: principal.tenant)
        var draft = try await service.decodeDraft(body.bytes, .multipart(boundary: boundary), inputNamesFile: true)
        if draft.entryFile == nil, draft.files.count == 1 { draft.entryFile = draft.files[0].path }
        guard let entry = draft.entryFile else {
            throw APIError.badRequest("name the file to run with the input field (input=FILE)", field: "input")
        }
        if draft.name == nil { draft.name = entry }
        return try await TaskController(service: service).createResponding(
            draft, fallbackPolicy: service.config.prototypePolicy, principal: principal, context: context, wait: wait, body: body.share)
    }

    @Sendable func delete(_ request: Request, context: EdgyRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        try Access.requireWriter(principal)
        let task = try await service.task(try context.parameters.require("id"), principal: principal)
        return try taskResponse(try await service.delete(task, principal: principal, logger: context.logger))
    }
}
