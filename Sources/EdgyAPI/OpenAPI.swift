import EdgyModel
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /openapi.json`.
struct OpenAPIController: Sendable {
    func register(_ routes: RouteRegistrar) {
        routes.on(.get, "openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
    }
}

/// The OpenAPI 3.1 description of every route `buildRouter` serves (a test holds the two to each other).
public enum OpenAPIDocument {
    public static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Edgy",
    "version": "1.0.0",
    "description": "Runs untrusted code in jails built from policies. Every route but /healthz and /readyz needs `Authorization: Bearer <token>`. A principal sees only its tenant's tasks: another tenant's task is 404. Readers may not create, cancel or delete (403); only admins manage tokens, read the audit log and reload policies. An address that fails authentication 10 times in a minute is answered 429 (too_many_failures, with Retry-After) until the minute ends. A tenant over its queued-task limit is answered 429 (queue_full, with Retry-After); one over its stored-task or byte quota 429 (quota_exceeded, field naming the quota). Errors are JSON {\"error\": {\"code\", \"message\", \"field\"?}}. Connections are bounded per client address (an IPv6 /64): one past the limit is answered 429 `too_many_connections` on its first request and closed; an idle connection, or one whose request head has not arrived, is closed after the idle timeout."
  },
  "servers": [{"url": "/"}],
  "security": [{"bearer": []}],
  "paths": {
    "/healthz": {
      "get": {"operationId": "healthz", "summary": "The process answers", "security": [],
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}}}
    },
    "/ui": {
      "get": {"operationId": "console", "summary": "The web console (docs/console.md): a page that signs in with a token kept in sessionStorage and calls this API", "security": [],
        "responses": {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}}}
    },
    "/ui/app.js": {
      "get": {"operationId": "consoleScript", "summary": "The console's script", "security": [],
        "responses": {"200": {"description": "the script", "content": {"text/javascript": {"schema": {"type": "string"}}}}}}
    },
    "/ui/app.css": {
      "get": {"operationId": "consoleStyle", "summary": "The console's style sheet", "security": [],
        "responses": {"200": {"description": "the style sheet", "content": {"text/css": {"schema": {"type": "string"}}}}}}
    },
    "/readyz": {
      "get": {"operationId": "readyz", "summary": "The daemon can take work", "security": [],
        "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
                      "503": {"$ref": "#/components/responses/Error"}}}
    },
    "/openapi.json": {
      "get": {"operationId": "openapi", "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}}
    },
    "/": {
      "post": {"operationId": "prototypeCreate", "summary": "Prototype: create a task from JSON {name, input}",
        "description": "`input` is code for the entry file of the prototype policy (`node` unless configured otherwise). Every /v1 field is accepted too.",
        "parameters": [{"$ref": "#/components/parameters/Wait"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateTask"}}}},
        "responses": {
          "200": {"$ref": "#/components/responses/Task"}, "201": {"$ref": "#/components/responses/Task"}, "202": {"$ref": "#/components/responses/Task"},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "408": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Busy"}}},
      "put": {"operationId": "prototypeUpload", "summary": "Prototype: create a task from uploaded files",
        "description": "Multipart: `file` parts, `name`, and `input` = the name of the uploaded file to run (copied to the policy's entry path). Without `input`, a single uploaded file is the entry.",
        "parameters": [{"$ref": "#/components/parameters/Wait"}],
        "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "additionalProperties": false,
          "properties": {"file": {"contentMediaType": "application/octet-stream", "description": "any bytes: a file (its part's filename is its path); repeat the part, each with its own filename, for more"},
                         "name": {"type": "string"}, "input": {"type": "string", "description": "file name of the entry among the uploads"},
                         "policy": {"type": "string"}}}}}},
        "responses": {"200": {"$ref": "#/components/responses/Task"}, "201": {"$ref": "#/components/responses/Task"}, "202": {"$ref": "#/components/responses/Task"},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "408": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Busy"}}}
    },
    "/{id}": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "prototypeGet", "summary": "Prototype: a task",
        "responses": {"200": {"$ref": "#/components/responses/Task"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}},
      "delete": {"operationId": "prototypeDelete", "summary": "Prototype: cancel and delete a task; answers with the task as it was last",
        "responses": {"200": {"$ref": "#/components/responses/Task"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks": {
      "post": {"operationId": "createTask", "summary": "Create a task",
        "description": "JSON (CreateTask) or multipart/form-data: every part with a filename is a file; .tar, .tar.gz/.tgz and .zip files are unpacked (regular files and directories only; absolute paths, '..', links and devices are refused with 400 naming the entry). Multipart fields: name, policy, input (code for the entry file), command (JSON array), stdin, env (repeated KEY=VALUE), limits (JSON object), steps (JSON array), max_attempts. 201 with the queued task; with ?wait, 200 with the finished task or 202 if it has not finished in time.",
        "parameters": [{"$ref": "#/components/parameters/Wait"}],
        "requestBody": {"$ref": "#/components/requestBodies/TaskBody"},
        "responses": {"200": {"$ref": "#/components/responses/Task"}, "201": {"$ref": "#/components/responses/Task"}, "202": {"$ref": "#/components/responses/Task"},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "408": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Busy"}}},
      "get": {"operationId": "listTasks", "summary": "The tenant's tasks, newest first",
        "parameters": [
          {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/TaskStatus"}},
          {"name": "policy", "in": "query", "schema": {"type": "string"}},
          {"name": "name", "in": "query", "schema": {"type": "string"}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
          {"name": "cursor", "in": "query", "description": "next_cursor of the previous page (opaque; 400 for one this server did not give)", "schema": {"type": "string", "pattern": "^[A-Za-z0-9+/=]*$"}}],
        "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskPage"}}}},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}}
    },
    "/v1/tasks/{id}": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "getTask", "summary": "A task",
        "responses": {"200": {"$ref": "#/components/responses/Task"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}},
      "delete": {"operationId": "deleteTask", "summary": "Cancel (a running attempt is killed) and delete a task",
        "responses": {"204": {"description": "deleted"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks/{id}/cancel": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "post": {"operationId": "cancelTask", "summary": "Cancel a task: 200 when it is finished (a queued task is cancelled at once), 202 while its running attempt is being killed",
        "responses": {"200": {"$ref": "#/components/responses/Task"}, "202": {"$ref": "#/components/responses/Task"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks/{id}/stdout": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "taskStdout", "summary": "The last attempt's stdout (so far, while it runs), its exact bytes once the attempt has ended",
        "responses": {"200": {"description": "output", "content": {"text/plain": {"schema": {"type": "string"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks/{id}/deliveries": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "taskDeliveries", "summary": "The task's webhook: its URL, state (pending, delivered, failed), next try and every try so far; 404 no_webhook without a callback_url",
        "responses": {"200": {"description": "the webhook", "content": {"application/json": {"schema": {"type": "object", "required": ["callback_url", "state", "next_attempt_at", "deliveries"], "properties": {
          "callback_url": {"type": "string"}, "state": {"type": "string", "enum": ["pending", "delivered", "failed"]}, "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
          "deliveries": {"type": "array", "items": {"type": "object", "required": ["attempt", "at", "status_code", "error", "duration_ms"], "properties": {
            "attempt": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "status_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]}, "duration_ms": {"type": "integer"}}}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks/{id}/stderr": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "taskStderr", "summary": "The last attempt's stderr (so far, while it runs), its exact bytes once the attempt has ended",
        "responses": {"200": {"description": "output", "content": {"text/plain": {"schema": {"type": "string"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks/{id}/events": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"},
        {"name": "Last-Event-ID", "in": "header", "description": "resume after this event id", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}],
      "get": {"operationId": "taskEvents", "summary": "Server-sent events: `event: status|stdout|stderr|step|case`, `id: <sequence>`, `data: <status, output text, or a step's or case's JSON>`; the stream ends after the terminal status event",
        "responses": {"200": {"description": "event stream", "content": {"text/event-stream": {"schema": {"type": "object", "description": "one event", "required": ["id", "event", "data"], "properties": {
          "id": {"type": "string", "pattern": "^[0-9]+$"}, "event": {"type": "string", "enum": ["status", "stdout", "stderr", "step", "case"]}, "data": {"type": "string"}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/policies": {
      "get": {"operationId": "listPolicies", "summary": "The policies this token may see",
        "responses": {"200": {"description": "policies", "content": {"application/json": {"schema": {"type": "object", "required": ["policies"],
          "properties": {"policies": {"type": "array", "items": {"$ref": "#/components/schemas/PolicySummary"}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}}
    },
    "/v1/policies/{name}": {
      "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {"operationId": "getPolicy", "summary": "A policy with its effective TOML",
        "responses": {"200": {"description": "policy", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Policy"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/policies/reload": {
      "post": {"operationId": "reloadPolicies", "summary": "Re-read the policy directory (admin)",
        "responses": {"200": {"description": "reloaded", "content": {"application/json": {"schema": {"type": "object", "required": ["policies", "diagnostics", "errors"],
          "properties": {"policies": {"type": "array", "items": {"type": "string"}}, "diagnostics": {"type": "array", "items": {"type": "string"}}, "errors": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/policies/learn": {
      "post": {"operationId": "learnPolicy", "summary": "Run a task body's workload with the learning filter and propose the smallest policy that runs it (admin)",
        "description": "The body is a task body, as for createTask (JSON or multipart), checked the same way; steps and blob references are refused (422). The workload runs under its policy with every isolation and limit, each syscall recorded and run when the policy allows it (else refused); runs are merged, the proposal (TOML that extends base) is verified by running the workload again under it. Synchronous; one learning at a time per server (429 learning_busy). 422 learning_failed when the workload does not succeed under its policy.",
        "parameters": [
          {"name": "runs", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}, "description": "learning runs to merge"},
          {"name": "name", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^./][^/]*$"}, "description": "the proposed policy's name (default: POLICY-learned)"}],
        "requestBody": {"$ref": "#/components/requestBodies/TaskBody"},
        "responses": {"200": {"description": "the proposal", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LearningResult"}}}},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "408": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}
    },
    "/metrics": {
      "get": {"operationId": "metrics", "summary": "Prometheus text exposition: queue depth, attempts by outcome, attempt durations",
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/workers": {
      "get": {"operationId": "listWorkers", "summary": "The daemons sharing this store, with their last heartbeat (admin)",
        "responses": {"200": {"description": "workers", "content": {"application/json": {"schema": {"type": "object", "required": ["workers"],
          "properties": {"workers": {"type": "array", "items": {"$ref": "#/components/schemas/Worker"}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/layers": {
      "get": {"operationId": "listLayers", "summary": "This host's dependency layers: key, size, last use, attempts using them (admin)",
        "responses": {"200": {"description": "layers", "content": {"application/json": {"schema": {"type": "object", "required": ["layers"],
          "properties": {"layers": {"type": "array", "items": {"type": "object", "required": ["key", "bytes", "last_used", "users"],
            "properties": {"key": {"type": "string"}, "bytes": {"type": "integer"}, "last_used": {"type": "string", "format": "date-time"}, "users": {"type": "integer"}}}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/layers/{key}": {
      "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "description": "the layer's key: 64 lower-case hexadecimal digits (400 otherwise)"}],
      "delete": {"operationId": "removeLayer", "summary": "Remove a layer no attempt uses (admin); the next task that needs it installs it again",
        "responses": {"204": {"description": "removed"}, "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/blobs": {
      "post": {"operationId": "uploadBlob", "summary": "Store the body as a blob of this tenant; answers its name (sha256:…) for a task's files",
        "description": "Any bytes but none (400), up to the server's max_blob_mib (64 MiB by default; 413 beyond). Idempotent: the same bytes give the same name, 201 the first time this tenant uploads them and 200 after. Counted once against the tenant's byte quota (429 quota_exceeded). Kept until deleted, or older than the retention period and used by no task.",
        "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}}},
        "responses": {"200": {"$ref": "#/components/responses/Blob"}, "201": {"$ref": "#/components/responses/Blob"},
          "400": {"$ref": "#/components/responses/Error"}, "408": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Busy"}, "501": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/blobs/{digest}": {
      "parameters": [{"$ref": "#/components/parameters/Digest"}],
      "get": {"operationId": "getBlob", "summary": "A blob's bytes (one Range honoured); another tenant's blob is 404",
        "parameters": [{"$ref": "#/components/parameters/Range"}],
        "responses": {"200": {"$ref": "#/components/responses/Bytes"}, "206": {"$ref": "#/components/responses/Bytes"}, "416": {"$ref": "#/components/responses/Error"},
          "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "500": {"$ref": "#/components/responses/Error"}, "501": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}},
      "delete": {"operationId": "deleteBlob", "summary": "Remove this tenant's upload of a blob; the blob goes once no task uses it",
        "responses": {"204": {"description": "removed"}, "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"},
          "409": {"$ref": "#/components/responses/Error"}, "501": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tasks/{id}/files": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "listTaskFiles", "summary": "The files the task's last attempt with [outputs] collected, and what it left out",
        "responses": {"200": {"description": "files", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FileList"}}}},
          "404": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}}
    },
    "/v1/tasks/{id}/files.tar.gz": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"}],
      "get": {"operationId": "getTaskFilesArchive", "summary": "Every collected file in one gzipped tar (empty when none)",
        "responses": {"200": {"description": "a ustar archive, gzipped", "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
          "404": {"$ref": "#/components/responses/Error"}, "500": {"$ref": "#/components/responses/Error"}, "501": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}}
    },
    "/v1/tasks/{id}/files/{path}": {
      "parameters": [{"$ref": "#/components/parameters/TaskID"},
        {"name": "path", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the file's path as listed, slashes included (out/plot.svg)"}],
      "get": {"operationId": "getTaskFile", "summary": "One collected file's bytes, with a Content-Type by extension (one Range honoured)",
        "parameters": [{"$ref": "#/components/parameters/Range"}],
        "responses": {"200": {"$ref": "#/components/responses/Bytes"}, "206": {"$ref": "#/components/responses/Bytes"}, "416": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "500": {"$ref": "#/components/responses/Error"}, "501": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}}}
    },
    "/v1/tokens": {
      "post": {"operationId": "createToken", "summary": "Create a token (admin); the answer holds the secret, shown this once and never again",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateToken"}}}},
        "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedToken"}}}},
          "400": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}},
      "get": {"operationId": "listTokens", "summary": "Tokens (admin), without their secrets",
        "parameters": [{"name": "tenant", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "tokens", "content": {"application/json": {"schema": {"type": "object", "required": ["tokens"],
          "properties": {"tokens": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/tokens/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
      "delete": {"operationId": "revokeToken", "summary": "Revoke a token (admin): it is refused (401) from now on (by other edgyd hosts sharing the database, within a second)",
        "responses": {"200": {"description": "revoked", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}}, "204": {"description": "revoked, and gone from the list by now"},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}
    },
    "/v1/audit": {
      "get": {"operationId": "listAudit", "summary": "The newest audit entries (admin), oldest first",
        "description": "Every authentication failure and every task create/cancel/delete, blob upload/delete, token and policy action, with its result. Never a token.",
        "parameters": [
          {"name": "action", "in": "query", "schema": {"type": "string", "examples": ["auth", "task.create", "task.cancel", "task.delete", "token.create", "token.list", "token.revoke", "policy.reload", "audit.read", "blob.upload", "blob.delete"]}},
          {"name": "tenant", "in": "query", "schema": {"type": "string"}},
          {"name": "since", "in": "query", "description": "ISO 8601 time", "schema": {"type": "string", "format": "date-time"}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}],
        "responses": {"200": {"description": "entries", "content": {"application/json": {"schema": {"type": "object", "required": ["entries"],
          "properties": {"entries": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}}}}}},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "429": {"$ref": "#/components/responses/TooManyRequests"}, "403": {"$ref": "#/components/responses/Error"}}}
    }
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "parameters": {
      "TaskID": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
      "Digest": {"name": "digest", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^(sha256:)?[0-9a-f]{64}$"}, "description": "sha256: and 64 lower-case hexadecimal digits (400 otherwise)"},
      "Range": {"name": "Range", "in": "header", "schema": {"type": "string"}, "description": "bytes=FIRST-[LAST] or bytes=-SUFFIX; several ranges or another unit get the whole file"},
      "Wait": {"name": "wait", "in": "query", "description": "seconds to wait for the task to finish (at most the server's maximum, 60 by default)", "schema": {"type": "number", "minimum": 0}}
    },
    "responses": {
      "Task": {"description": "a task", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}},
      "Blob": {"description": "a blob of this tenant", "content": {"application/json": {"schema": {"type": "object", "required": ["blob", "size", "created_at"], "properties": {
        "blob": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$", "description": "what a task's file gives as blob"}, "size": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}}}}}},
      "Bytes": {"description": "the bytes, or the range asked for (206 with Content-Range)", "headers": {"ETag": {"schema": {"type": "string"}}, "Content-Range": {"schema": {"type": "string"}}},
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
      "Error": {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "no valid bearer token", "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooManyRequests": {"description": "too_many_failures (this address failed authentication too often), queue_full, quota_exceeded, too_many_bodies (the tenant's request bodies arriving now hold its share of the daemon's body budget) or too_many_connections (this address holds its share of connections)", "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Busy": {"description": "too many uploads are being unpacked, or request bodies arriving at once (busy), or the daemon is not ready", "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "requestBodies": {
      "TaskBody": {"required": true, "content": {
          "application/json": {"schema": {"$ref": "#/components/schemas/CreateTask"}},
          "multipart/form-data": {"schema": {"type": "object", "additionalProperties": false, "properties": {
            "file": {"contentMediaType": "application/octet-stream", "description": "any bytes: a file (its part's filename is its path); repeat the part, each with its own filename, for more"},
            "name": {"$ref": "#/components/schemas/CreateTask/properties/name"}, "policy": {"type": "string"}, "input": {"type": "string"},
            "callback_url": {"$ref": "#/components/schemas/CreateTask/properties/callback_url"},
            "command": {"type": "string", "contentMediaType": "application/json", "pattern": "^\\[\"[^\"\\\\\\u0000-\\u001f]+\"(,\"[^\"\\\\\\u0000-\\u001f]*\")*\\]$", "description": "a JSON array of strings, e.g. [\"/bin/sh\",\"-c\",\"echo hi\"]"}, "stdin": {"type": "string"},
            "env": {"type": "array", "items": {"type": "string", "pattern": "^[^=\\u0000]+=[^\\u0000]*$", "description": "KEY=VALUE"}},
            "limits": {"$ref": "#/components/schemas/Limits"}, "max_attempts": {"$ref": "#/components/schemas/CreateTask/properties/max_attempts"},
            "steps": {"$ref": "#/components/schemas/CreateTask/properties/steps"}}},
            "encoding": {"limits": {"contentType": "application/json"}, "steps": {"contentType": "application/json"}}}}}
    },
    "schemas": {
      "LearningCount": {"type": "object", "required": ["count", "first_ms", "first_run"], "properties": {"count": {"type": "integer"}, "first_ms": {"type": "number"}, "first_run": {"type": "integer"}}},
      "LearningRun": {"type": "object", "required": ["outcome", "wall_ms", "stderr_tail"], "properties": {
        "outcome": {"type": "string"}, "exit_code": {"type": "integer"}, "signal_name": {"type": "string"}, "seccomp_syscall": {"type": "string"},
        "wall_ms": {"type": "integer"}, "stderr_tail": {"type": "string"}, "setup": {"type": "string"}}},
      "LearningResult": {"type": "object", "required": ["proposal", "name", "digest", "from", "learned", "removed", "warnings", "runs", "verification", "verified", "added_while_verifying"], "properties": {
        "added_while_verifying": {"type": "array", "items": {"type": "string"}, "description": "calls only a verification run made (its kill named them), added before verifying again"},
        "proposal": {"type": "string", "description": "the proposed policy file (TOML), its verification, removals and warnings in comments"},
        "name": {"type": "string"}, "digest": {"type": "string"}, "from": {"type": "string"}, "verified": {"type": "boolean"},
        "warnings": {"type": "array", "items": {"type": "string"}, "description": "calls the policy refuses that the workload tried: refused while learning, never proposed"},
        "removed": {"type": "object", "required": ["syscalls", "mounts", "socket_families"], "properties": {
          "syscalls": {"type": "array", "items": {"type": "string"}}, "mounts": {"type": "array", "items": {"type": "string"}}, "socket_families": {"type": "array", "items": {"type": "string"}}}},
        "runs": {"type": "array", "items": {"$ref": "#/components/schemas/LearningRun"}},
        "verification": {"$ref": "#/components/schemas/LearningRun"},
        "learned": {"type": "object", "required": ["syscalls", "socket_families", "ioctls", "clones", "files", "destinations", "refused", "unreadable_paths", "runs", "traced_runs"], "properties": {
          "syscalls": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/LearningCount"}},
          "socket_families": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/LearningCount"}},
          "ioctls": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/LearningCount"}},
          "clones": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/LearningCount"}},
          "destinations": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/LearningCount"}},
          "files": {"type": "object", "additionalProperties": {"type": "object", "required": ["read", "write", "lookup", "exec"], "properties": {
            "read": {"type": "integer"}, "write": {"type": "integer"}, "lookup": {"type": "integer"}, "exec": {"type": "integer"}}}},
          "refused": {"type": "object", "additionalProperties": {"type": "object", "required": ["count", "reason", "errno"], "properties": {
            "count": {"$ref": "#/components/schemas/LearningCount"}, "reason": {"type": "string"}, "errno": {"type": "string"}}}},
          "unreadable_paths": {"type": "integer"}, "runs": {"type": "integer"},
          "traced_runs": {"type": "integer", "description": "runs observed through ptrace: a seccomp filter above edgyd holds the listener learning uses elsewhere"}}}}},
      "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "examples": ["invalid_json", "invalid_field", "invalid_archive", "unauthorized", "forbidden", "task_not_found", "policy_not_found", "route_not_found", "too_large", "unsupported_media_type", "input_not_allowed", "command_override_not_allowed", "command_required", "entry_missing", "env_not_allowed", "limit_not_allowed", "max_attempts_not_allowed", "queue_full", "quota_exceeded", "too_many_failures", "token_not_found", "unavailable", "internal"]},
        "message": {"type": "string"},
        "field": {"type": "string", "description": "the request field at fault: `files[2].path`, `limits.memory_mib`, `env.HOME`, `file:a.tar!../x`"}}}}},
      "TaskStatus": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
      "Outcome": {"type": "string", "enum": ["exited", "signaled", "wall_timeout", "cpu_timeout", "memory_limit", "seccomp_violation", "output_limit", "setup_error", "cancelled", "lost", "dependency_error"]},
      "Limits": {"type": "object", "additionalProperties": false, "description": "A task may only tighten its policy's limits (422 otherwise).", "properties": {
        "wall_time_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "cpu_time_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "memory_mib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "pids": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000},
        "open_files": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "file_size_mib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "workdir_mib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "tmp_mib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000},
        "stdout_kib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "stderr_kib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "output_overflow": {"type": "string", "enum": ["truncate", "kill"]},
        "pending_signals": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "mqueue_kib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}, "memlock_kib": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000000000000000}}},
      "CreateTask": {"type": "object", "additionalProperties": false, "properties": {
        "name": {"type": "string", "default": "task", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000-\\u001f\\u007f]*$", "description": "at most 200 bytes of UTF-8, no control characters"},
        "policy": {"type": "string", "description": "default: the server's default policy (the prototype policy on POST /)"},
        "input": {"type": "string", "description": "code for the policy's entry file (422 if the policy has none)"},
        "callback_url": {"type": "string", "minLength": 1, "maxLength": 2048, "pattern": "^[hH][tT][tT][pP][sS]?://[!-~]+$", "description": "http(s) URL the finished task is POSTed to, signed (docs/webhooks.md); 400 when malformed or refused (loopback, private and metadata addresses unless the operator allows them)"},
        "files": {"type": "array", "items": {"type": "object", "required": ["path"], "additionalProperties": false, "properties": {
          "path": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^(\\./)*(?!\\.\\.?(/|$))[^/\\\\\\u0000-\\u001f\\u007f]{1,255}(/(?!\\.\\.?(/|$))[^/\\\\\\u0000-\\u001f\\u007f]{1,255})*$", "description": "relative: no leading '/', no '.', '..' or empty components, no '\\\\' or control characters; unique in the task"}, "content": {"type": "string", "default": ""},
          "encoding": {"type": "string", "enum": ["utf8", "base64"], "default": "utf8", "description": "base64: content must be valid base64"},
          "mode": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 511}, {"type": "string", "pattern": "^(0o)?0?[0-7]{1,3}$", "description": "octal, e.g. \"0755\""}], "default": "0644"},
          "blob": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$", "description": "a blob of this tenant (POST /v1/blobs, or a file its tasks collected) instead of content; not with content or encoding (422 blob_not_found when the tenant has no such blob)"}},
          "not": {"required": ["blob", "content"]},
          "if": {"required": ["encoding"], "properties": {"encoding": {"const": "base64"}}},
          "then": {"properties": {"content": {"pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"}}}}},
        "command": {"type": "array", "minItems": 1, "maxItems": 4096, "prefixItems": [{"type": "string", "minLength": 1}], "items": {"type": "string", "pattern": "^[^\\u0000]*$"}, "description": "only where the policy allows a command override (422 otherwise)"},
        "stdin": {"type": "string"}, "stdin_base64": {"type": "string", "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$", "description": "not with stdin"},
        "env": {"type": "object", "propertyNames": {"pattern": "^[^=\\u0000]+$"}, "additionalProperties": {"type": "string", "pattern": "^[^\\u0000]*$"}, "description": "only keys in the policy's task_env (422 otherwise)"},
        "limits": {"$ref": "#/components/schemas/Limits"},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000000000000000, "description": "at most the policy's retry.max_attempts"},
        "dependencies": {"type": "array", "minItems": 1, "maxItems": 500, "items": {"type": "string"}, "description": "packages in the policy's manifest format (requests==2.32.3, left-pad@1.3.0); only under a policy with [dependencies] (422 otherwise), not with its manifest among the files; installed once into a cached read-only layer"},
        "outputs": {"type": "array", "maxItems": 64, "items": {"type": "string", "minLength": 1, "maxLength": 512}, "description": "output patterns (out/**, *.png): of the files the policy's [outputs] paths collect, only those matching one of these; [] collects none; only under a policy with [outputs] unless empty (422 otherwise)"},
        "steps": {"type": "array", "minItems": 1, "maxItems": 16, "items": {"$ref": "#/components/schemas/Step"}, "description": "a multi-step task: each step its own jail, all sharing one workspace; not with command or stdin (400); names unique; at most 1000 cases in all"}},
        "not": {"required": ["stdin", "stdin_base64"]}},
      "Step": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
        "type": {"type": "string", "enum": ["run", "dependencies"], "default": "run", "description": "dependencies: the install of the task's dependencies, first only, nothing but a name"},
        "command": {"$ref": "#/components/schemas/CreateTask/properties/command"},
        "stdin": {"type": "string", "description": "not with cases (each case has its own)"},
        "limits": {"$ref": "#/components/schemas/Limits"},
        "continue_on_failure": {"type": "boolean", "default": false},
        "stop_on_first_failure": {"type": "boolean", "default": false, "description": "steps with cases only"},
        "comparator": {"$ref": "#/components/schemas/Case/properties/comparator"},
        "tolerance": {"$ref": "#/components/schemas/Case/properties/tolerance"},
        "cases": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/Case"}}}},
      "Case": {"type": "object", "required": ["expected_stdout"], "additionalProperties": false, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000-\\u001f]*$"},
        "stdin": {"type": "string"},
        "expected_stdout": {"type": "string", "description": "at most 1 MiB; with regex, a pattern that must match the whole output (one final newline aside)"},
        "comparator": {"type": "string", "enum": ["exact", "trim", "float", "regex"], "default": "exact"},
        "tolerance": {"type": "number", "minimum": 0, "maximum": 1, "description": "float only (default 1e-6), absolute or relative"}}},
      "Verdict": {"type": "string", "enum": ["accepted", "wrong_answer", "time_limit", "memory_limit", "runtime_error", "output_limit", "seccomp_violation"]},
      "CasesSummary": {"type": "object", "required": ["total", "run", "passed", "max_wall_ms", "max_cpu_ms", "max_memory_bytes"], "properties": {
        "total": {"type": "integer"}, "run": {"type": "integer"}, "passed": {"type": "integer"},
        "first_failure": {"type": "object", "required": ["step", "index", "verdict"], "properties": {"step": {"type": "string"}, "index": {"type": "integer"}, "verdict": {"$ref": "#/components/schemas/Verdict"}}},
        "max_wall_ms": {"type": "integer"}, "max_cpu_ms": {"type": "integer"}, "max_memory_bytes": {"type": "integer"}}},
      "CaseReport": {"type": "object", "required": ["index", "verdict", "outcome", "wall_ms", "cpu_ms", "stdout", "stderr", "stdout_omitted_bytes"], "properties": {
        "index": {"type": "integer"}, "name": {"type": "string"}, "verdict": {"$ref": "#/components/schemas/Verdict"}, "outcome": {"$ref": "#/components/schemas/Outcome"},
        "exit_code": {"type": "integer"}, "signal_name": {"type": "string"}, "seccomp_syscall": {"type": "string"}, "detail": {"type": "string", "description": "why the answer is wrong"},
        "wall_ms": {"type": "integer"}, "cpu_ms": {"type": "integer"}, "memory_peak_bytes": {"type": "integer"},
        "stdout": {"type": "string", "description": "the first 4096 bytes"}, "stderr": {"type": "string", "description": "the first 4096 bytes"}, "stdout_omitted_bytes": {"type": "integer"}}},
      "StepReport": {"type": "object", "required": ["name", "kind", "status"], "properties": {
        "name": {"type": "string"}, "kind": {"type": "string", "enum": ["dependencies", "run", "cases"]}, "status": {"type": "string", "enum": ["succeeded", "failed", "skipped"]},
        "report": {"$ref": "#/components/schemas/AttemptReport"}, "dependencies": {"$ref": "#/components/schemas/AttemptReport/properties/dependencies"},
        "cases": {"type": "array", "items": {"$ref": "#/components/schemas/CaseReport"}}, "summary": {"$ref": "#/components/schemas/CasesSummary"}}},
      "AttemptReport": {"type": "object", "description": "The jail's report of one attempt: stdout/stderr as text (invalid UTF-8 replaced), stdout_base64/stderr_base64 the exact bytes.", "properties": {
        "outcome": {"$ref": "#/components/schemas/Outcome"}, "exit_code": {"type": ["integer", "null"]}, "signal": {"type": ["integer", "null"]},
        "signal_name": {"type": ["string", "null"]}, "seccomp_syscall": {"type": ["string", "null"]},
        "setup": {"type": ["object", "null"], "properties": {"stage": {"type": "string"}, "errno": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]}}},
        "wall_ms": {"type": "integer"}, "cpu_user_ms": {"type": "integer"}, "cpu_sys_ms": {"type": "integer"}, "max_rss_kib": {"type": "integer"},
        "memory_peak_bytes": {"type": ["integer", "null"]}, "oom_kills": {"type": "integer"}, "pids_peak": {"type": ["integer", "null"]}, "pids_limit_hits": {"type": "integer"},
        "network": {"type": "object", "description": "egress jails only", "properties": {"bytes_out": {"type": "integer"}, "bytes_in": {"type": "integer"}, "connections": {"type": "integer"}, "refused": {"type": "integer"}, "refused_destinations": {"type": "array", "items": {"type": "string"}}}},
        "dependencies": {"type": "object", "description": "tasks with dependencies only: the layer the run mounted, or why it could not be installed", "required": ["key", "source"], "properties": {"key": {"type": "string", "description": "sha256 of the manifest, the lockfile, the policy digest and the runtime version"}, "source": {"type": "string", "enum": ["installed", "cached", "fetched", "failed"]}, "install_ms": {"type": "integer"}, "layer_bytes": {"type": "integer"}, "log": {"type": "string", "description": "the end of the install step's output"}, "error": {"type": "string"}, "retryable": {"type": "boolean"}}},
        "outputs": {"type": "object", "description": "policies with [outputs] only: the files collected from the working directory (GET /v1/tasks/{id}/files/{path} serves them), and those left out", "required": ["files", "omitted", "omitted_count", "outputs_truncated", "collect_ms"], "properties": {
          "files": {"type": "array", "items": {"$ref": "#/components/schemas/OutputFile"}}, "omitted": {"type": "array", "items": {"$ref": "#/components/schemas/OmittedFile"}},
          "omitted_count": {"type": "integer"}, "outputs_truncated": {"type": "boolean", "description": "a file was left out for a cap: max_files, max_mib or time_ms"}, "collect_ms": {"type": "number"}, "error": {"type": "string"}}},
        "steps": {"type": "array", "items": {"$ref": "#/components/schemas/StepReport"}, "description": "multi-step tasks only: every step, in order"},
        "cases": {"$ref": "#/components/schemas/CasesSummary"},
        "stdout": {"type": "string"}, "stderr": {"type": "string"}, "stdout_base64": {"type": "string", "contentEncoding": "base64"}, "stderr_base64": {"type": "string", "contentEncoding": "base64"}, "stdout_truncated_bytes": {"type": "integer"}, "stderr_truncated_bytes": {"type": "integer"},
        "started_at": {"type": "number"}, "finished_at": {"type": "number"}, "policy": {"type": "string"}, "policy_digest": {"type": "string"}}},
      "Attempt": {"type": "object", "required": ["number", "worker", "started_at", "finished_at", "outcome", "report"], "properties": {
        "number": {"type": "integer"}, "worker": {"type": "string"}, "started_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "outcome": {"oneOf": [{"$ref": "#/components/schemas/Outcome"}, {"type": "null"}]},
        "report": {"oneOf": [{"$ref": "#/components/schemas/AttemptReport"}, {"type": "null"}]}}},
      "Task": {"type": "object", "required": ["id", "name", "tenant", "policy", "status", "cancel_requested", "max_attempts", "created_at", "updated_at", "finished_at", "files", "attempts", "result", "outcome", "exit_code", "stdout", "stderr", "stdout_base64", "stderr_base64"], "properties": {
        "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "tenant": {"type": "string"}, "policy": {"type": "string"},
        "status": {"$ref": "#/components/schemas/TaskStatus"}, "cancel_requested": {"type": "boolean"}, "max_attempts": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "files": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "size": {"type": "integer"}, "mode": {"type": "string", "description": "octal"}, "blob": {"type": "string", "description": "sha256:… for a file given by reference"}}}},
        "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
        "result": {"oneOf": [{"$ref": "#/components/schemas/AttemptReport"}, {"type": "null"}], "description": "the last attempt's report"},
        "outcome": {"oneOf": [{"$ref": "#/components/schemas/Outcome"}, {"type": "null"}]},
        "exit_code": {"type": ["integer", "null"]}, "stdout": {"type": ["string", "null"]}, "stderr": {"type": ["string", "null"]},
        "stdout_base64": {"type": ["string", "null"], "contentEncoding": "base64"}, "stderr_base64": {"type": ["string", "null"], "contentEncoding": "base64"}}},
      "OutputFile": {"type": "object", "required": ["path", "size", "sha256", "mode"], "properties": {
        "path": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "mode": {"type": "integer", "description": "permission bits"}}},
      "OmittedFile": {"type": "object", "required": ["path", "reason"], "properties": {
        "path": {"type": "string"}, "reason": {"type": "string", "enum": ["symlink", "special", "max_files", "max_bytes", "time", "unreadable"]}}},
      "FileList": {"type": "object", "required": ["attempt", "files", "omitted", "omitted_count", "outputs_truncated"], "properties": {
        "attempt": {"type": ["integer", "null"], "description": "the attempt whose files these are; null when none collected any"},
        "files": {"type": "array", "items": {"$ref": "#/components/schemas/OutputFile"}}, "omitted": {"type": "array", "items": {"$ref": "#/components/schemas/OmittedFile"}},
        "omitted_count": {"type": "integer"}, "outputs_truncated": {"type": "boolean"}, "error": {"type": ["string", "null"]}}},
      "TaskPage": {"type": "object", "required": ["tasks", "next_cursor"], "properties": {
        "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}, "next_cursor": {"type": ["string", "null"]}}},
      "Worker": {"type": "object", "required": ["id", "host", "slots", "kernel", "cgroup_version", "started_at", "last_heartbeat"], "properties": {
        "id": {"type": "string"}, "host": {"type": "string"}, "slots": {"type": "integer"}, "kernel": {"type": "string"},
        "cgroup_version": {"type": ["integer", "null"]}, "started_at": {"type": "string", "format": "date-time"},
        "last_heartbeat": {"type": "string", "format": "date-time"}}},
      "CreateToken": {"type": "object", "required": ["name", "role"], "additionalProperties": false, "properties": {
        "name": {"type": "string", "maxLength": 200, "pattern": "[^ \\t]", "description": "1 to 200 characters once spaces and tabs around it are trimmed"},
        "role": {"type": "string", "enum": ["admin", "submitter", "reader"]},
        "tenant": {"type": ["string", "null"], "maxLength": 200, "pattern": "[^ \\t]", "description": "default: the admin's own tenant"},
        "policies": {"type": ["array", "null"], "minItems": 1, "items": {"type": "string", "minLength": 1}, "description": "the only policies the token may run (its execution role); omitted: any its role allows"},
        "expires_in": {"type": ["string", "null"], "pattern": "^[0-9]{1,16}(\\.[0-9]{1,15})?[smhdw]$", "description": "lifetime from 1s to 3650d: 90s, 15m, 12h, 30d, 2w; omitted: no expiry"},
        "callback_url": {"$ref": "#/components/schemas/CreateTask/properties/callback_url", "description": "the webhook of the tasks it creates that give none"}}},
      "Token": {"type": "object", "required": ["id", "name", "role", "tenant", "policies", "state", "created_at", "expires_at", "revoked_at", "callback_url"], "properties": {
        "callback_url": {"type": ["string", "null"], "description": "the default webhook of its tasks"},
        "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "role": {"type": "string", "enum": ["admin", "submitter", "reader"]},
        "tenant": {"type": "string"}, "policies": {"type": ["array", "null"], "items": {"type": "string"}},
        "state": {"type": "string", "enum": ["active", "expired", "revoked"]}, "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"}, "revoked_at": {"type": ["string", "null"], "format": "date-time"}}},
      "CreatedToken": {"allOf": [{"$ref": "#/components/schemas/Token"}, {"type": "object", "required": ["token"], "properties": {
        "token": {"type": "string", "description": "the bearer token; only its hash is stored"}}}]},
      "AuditEntry": {"type": "object", "required": ["action", "result", "status", "time"], "properties": {
        "action": {"type": "string"}, "result": {"type": "string", "enum": ["ok", "denied", "error"]}, "status": {"type": "integer"},
        "time": {"type": "string", "format": "date-time"}, "principal_id": {"type": "string", "format": "uuid"}, "principal_name": {"type": "string"},
        "tenant": {"type": "string"}, "client": {"type": "string"}, "method": {"type": "string"}, "path": {"type": "string"},
        "task_id": {"type": "string", "format": "uuid"}, "policy": {"type": "string"}, "token_id": {"type": "string", "format": "uuid"},
        "detail": {"type": "string"}}},
      "PolicySummary": {"type": "object", "required": ["name", "description", "digest", "limits"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"}, "digest": {"type": "string"}, "entry": {"type": ["string", "null"]},
        "limits": {"$ref": "#/components/schemas/Limits"}}},
      "Policy": {"type": "object", "required": ["name", "description", "digest", "entry", "command", "task_env", "allow_command_override", "max_attempts", "roles", "limits", "toml"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"}, "digest": {"type": "string"}, "entry": {"type": ["string", "null"]},
        "command": {"type": "array", "items": {"type": "string"}}, "task_env": {"type": "array", "items": {"type": "string"}},
        "allow_command_override": {"type": "boolean"}, "max_attempts": {"type": "integer"}, "roles": {"type": "array", "items": {"type": "string"}},
        "limits": {"$ref": "#/components/schemas/Limits"}, "toml": {"type": "string", "description": "the effective policy"}}}
    }
  }
}
"""#
}
