import EdgyModel
import EdgyPolicy
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import EdgyAPI

@Suite struct PolicyRouteTests {
    @Test func listAndGet() async throws {
        try await Harness().test { client in
            let list = try await client.get("/v1/policies").json
            let names = try #require(list["policies"] as? [[String: Any]]).compactMap { $0["name"] as? String }
            #expect(names == ["adminonly", "default", "node", "raw"])
            let limited = try #require(try await client.get("/v1/policies", token: Harness.limited).json["policies"] as? [[String: Any]])
            #expect(limited.compactMap { $0["name"] as? String } == ["node"])

            let node = try await client.get("/v1/policies/node").json
            #expect(node["entry"] as? String == "main.js")
            #expect((node["limits"] as? [String: Any])?["memory_mib"] as? Int == 512)
            #expect((node["toml"] as? String)?.contains("memory_mib = 512") == true)
            #expect((node["digest"] as? String)?.count == 64)

            // Every limit a task may override is shown, under the name the task would use.
            #expect(Set(((node["limits"] as? [String: Any]) ?? [:]).keys) == Set(LimitOverrides.keys))

            #expect(try await client.get("/v1/policies/nope").error.code == "policy_not_found")
            #expect(try await client.get("/v1/policies/default", token: Harness.limited).status == .notFound)
        }
    }

    @Test func reloadIsForAdmins() async throws {
        let (catalog, _) = PolicyCatalog.load(directory: TestSupportPaths.policies)
        try await Harness(policies: catalog).test { client in
            #expect(try await client.send(.post, "/v1/policies/reload").status == .forbidden)
            let reloaded = try await client.send(.post, "/v1/policies/reload", token: Harness.admin)
            #expect(reloaded.status == .ok)
            #expect(try (reloaded.json["policies"] as? [String])?.contains("node") == true)
        }
        // A fixed catalog has no directory to re-read.
        try await Harness().test { client in
            let response = try await client.send(.post, "/v1/policies/reload", token: Harness.admin)
            #expect(response.status == .conflict)
        }
    }
}

@Suite struct OpenAPITests {
    /// The document's `Limits` schema names every limit a task may override, and only those.
    @Test func limitsSchemaHasEveryOverridableKey() throws {
        let object = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any]
        let schemas = try #require((object?["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let limits = try #require((schemas["Limits"] as? [String: Any])?["properties"] as? [String: Any])
        #expect(Set(limits.keys) == Set(LimitOverrides.keys))
        #expect(Set(LimitOverrides.keys) == Set(PolicyVocabulary.knownKeys["limits"] ?? []))
    }

    func documentedRoutes() throws -> Set<APIRoute> {
        let object = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8))
        let document = try #require(object as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var routes = Set<APIRoute>()
        for (path, operations) in paths {
            for method in operations.keys where ["get", "put", "post", "delete", "patch", "head"].contains(method) {
                routes.insert(APIRoute(method: method.uppercased(), path: path))
            }
        }
        return routes
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let harness = try await Harness()
        let served = Set(makeRouter(harness.deps, harness.config).routes)
        let documented = try documentedRoutes()
        #expect(served.subtracting(documented).isEmpty, "undocumented: \(served.subtracting(documented))")
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served))")
        #expect(served.count == 37)  // 18 + tokens (3), audit (1), workers (1), metrics (1), layers (2), blobs (3), task files (3), policy learning (1), deliveries (1), console (3)

        // And the router answers every documented route with something other than "no such route".
        try await harness.test { client in
            for route in documented {
                let uri = route.path.replacingOccurrences(of: "{id}", with: UUID().uuidString).replacingOccurrences(of: "{name}", with: "node")
                    .replacingOccurrences(of: "{key}", with: String(repeating: "ab", count: 32))
                let response = try await client.execute(uri: uri, method: HTTPRequest.Method(route.method)!, headers: headers(Harness.admin))
                if response.status == .notFound { #expect(try response.error.code != "route_not_found", "\(route)") }
            }
        }
    }

    @Test func servedDocumentIsTheSame() async throws {
        try await Harness().test { client in
            let response = try await client.get("/openapi.json")
            #expect(response.status == .ok)
            #expect(response.text == OpenAPIDocument.json)
        }
    }
}

@Suite struct LiveServerTests {
    @Test func liveServerOnPortZero() async throws {
        let harness = try await Harness()
        try await harness.test(.live) { client in
            #expect(try await client.get("/healthz", token: nil).status == .ok)
            let created = try await client.postJSON("/", #"{"name":"task1", "input": "const x=1; const y=2; console.log(x+y);"}"#)
            #expect(created.status == .created)
            let id = try #require(try created.json["id"] as? String)
            #expect(try await client.get("/v1/tasks/\(id)").json["name"] as? String == "task1")
            #expect(try await client.get("/v1/tasks/\(id)", token: nil).status == .unauthorized)
        }
    }
}
