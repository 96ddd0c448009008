import EdgyAuth
import EdgyModel
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import EdgyAPI

@Suite struct AuthAndHealthTests {
    @Test func healthAndReadinessNeedNoToken() async throws {
        try await Harness().test { client in
            let health = try await client.get("/healthz", token: nil)
            #expect(health.status == .ok)
            #expect(try health.json["status"] as? String == "ok")
            #expect(try await client.get("/readyz", token: nil).status == .ok)
        }
        try await Harness(ready: false).test { client in
            let response = try await client.get("/readyz", token: nil)
            #expect(response.status == .serviceUnavailable)
            #expect(try response.error.code == "unavailable")
        }
    }

    @Test(arguments: [nil, "nope", Harness.expired, Harness.revoked])
    func badTokensAre401(token: String?) async throws {
        try await Harness().test { client in
            for uri in ["/v1/tasks", "/openapi.json", "/v1/policies", "/no/such/route"] {
                let response = try await client.get(uri, token: token)
                #expect(response.status == .unauthorized, "\(uri)")
                #expect(try response.error.code == "unauthorized")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            let create = try await client.postJSON("/v1/tasks", #"{"input":"echo"}"#, token: token)
            #expect(create.status == .unauthorized)
        }
    }

    @Test func malformedAuthorizationHeaderIs401() async throws {
        try await Harness().test { client in
            let response = try await client.execute(uri: "/v1/tasks", method: .get, headers: [.authorization: "Basic Zm9vOmJhcg=="])
            #expect(response.status == .unauthorized)
        }
    }

    /// The token's trim keeps what Foundation's `trimmingCharacters(in: .whitespaces)` keeps, for
    /// every scalar up to U+3100 (all of Unicode's space separators among them) and a few beyond.
    @Test func theTokensTrimMatchesFoundations() {
        let extra: [UInt32] = [0x1_0000, 0xFEFF, 0x1_F600]
        for value in Array(UInt32(0)...0x3100) + extra {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let s = String(Character(scalar))
            for text in [s, s + "tok" + s, s + s + "tok en" + s, "tok" + s, s + "tok", "\t \(s)tok\(s) \t", s + s] {
                let ours = String(Substring(text).trimmingWhitespace)
                #expect(ours == text.trimmingCharacters(in: .whitespaces), "U+\(String(value, radix: 16)) in \(Array(text.unicodeScalars))")
            }
        }
    }

    @Test func aTokenBetweenSpacesStillAuthenticates() async throws {
        try await Harness().test { client in
            let response = try await client.execute(
                uri: "/v1/tasks", method: .get, headers: [.authorization: "Bearer   \(Harness.submitter)\t"])
            #expect(response.status == .ok)
        }
    }

    @Test func unknownRouteWithTokenIs404() async throws {
        try await Harness().test { client in
            let response = try await client.get("/v2/whatever")
            #expect(response.status == .notFound)
            #expect(try response.error.code == "route_not_found")
        }
    }

    @Test func readerReadsButCannotWrite() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            let created = try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#)
            #expect(created.status == .created)
            let id = try #require(try created.json["id"] as? String)

            let create = try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#, token: Harness.reader)
            #expect(create.status == .forbidden)
            #expect(try create.error.code == "forbidden")
            #expect(try await client.send(.post, "/v1/tasks/\(id)/cancel", token: Harness.reader).status == .forbidden)
            #expect(try await client.send(.delete, "/v1/tasks/\(id)", token: Harness.reader).status == .forbidden)
            #expect(try await client.send(.delete, "/\(id)", token: Harness.reader).status == .forbidden)
            #expect(try await client.get("/v1/tasks/\(id)", token: Harness.reader).status == .ok)
            #expect(try await client.get("/v1/tasks", token: Harness.reader).json["tasks"] as? [Any] != nil)
        }
        #expect(try await harness.taskCount() == 1)
    }

    @Test func otherTenantsTasksAre404() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            let created = try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#)
            let id = try #require(try created.json["id"] as? String)
            for (method, uri) in [(HTTPRequest.Method.get, "/v1/tasks/\(id)"), (.get, "/v1/tasks/\(id)/stdout"), (.get, "/v1/tasks/\(id)/events"),
                                  (.post, "/v1/tasks/\(id)/cancel"), (.delete, "/v1/tasks/\(id)"), (.get, "/\(id)"), (.delete, "/\(id)")] {
                let response = try await client.send(method, uri, token: Harness.otherTenant)
                #expect(response.status == .notFound, "\(method) \(uri)")
                #expect(try response.error.code == "task_not_found")
            }
            let list = try await client.get("/v1/tasks", token: Harness.otherTenant)
            #expect(try (list.json["tasks"] as? [Any])?.isEmpty == true)
            // Still there for its own tenant.
            #expect(try await client.get("/v1/tasks/\(id)").status == .ok)
        }
        #expect(try await harness.taskCount() == 1)
    }

    @Test func policyAccessIsChecked() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            // The token lists only "node".
            let denied = try await client.postJSON("/v1/tasks", #"{"policy":"default","input":"echo"}"#, token: Harness.limited)
            #expect(denied.status == .forbidden)
            #expect(try denied.error.field == "policy")
            let allowed = try await client.postJSON("/v1/tasks", #"{"policy":"node","input":"console.log(1)"}"#, token: Harness.limited)
            #expect(allowed.status == .created)
            // access.roles = [] admits only admins.
            #expect(try await client.postJSON("/v1/tasks", #"{"policy":"adminonly"}"#).status == .forbidden)
            #expect(try await client.postJSON("/v1/tasks", #"{"policy":"adminonly"}"#, token: Harness.admin).status == .created)
        }
    }
}
