import EdgyModel
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import EdgyAPI

/// Every known path answers an undeclared method 405 with `Allow` and a JSON error, not 404.
@Suite struct MethodNotAllowedTests {
    @Test func everyRouteAnswers405ForAnUndeclaredMethod() async throws {
        let harness = try await Harness()
        let routes = makeRouter(harness.deps, harness.config).routes
        let byPath = Dictionary(grouping: routes, by: \.path).mapValues { Set($0.map(\.method)) }
        #expect(byPath.count >= 15)
        try await harness.test(.live) { (client) async throws in
            for (path, declared) in byPath {
                let uri = path.replacingOccurrences(of: "{id}", with: UUID().uuidString).replacingOccurrences(of: "{name}", with: "default")
                    .replacingOccurrences(of: "{key}", with: String(repeating: "ab", count: 32))
                    .replacingOccurrences(of: "{digest}", with: "sha256:" + String(repeating: "ab", count: 32))
                    .replacingOccurrences(of: "{path}", with: "out/deep/plot.svg")
                for method in RouteRegistrar.answeredMethods where !declared.contains(method.rawValue) {
                    if method == .head && declared.contains("GET") { continue }
                    let response = try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer \(Harness.admin)"])
                    #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                    let allow = Set((response.headers[.allow] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    #expect(allow == declared, "\(method) \(path): Allow \(allow)")
                    if method != .head {
                        #expect(try response.error.code == "method_not_allowed", "\(method) \(path)")
                    }
                }
            }
        }
    }

    @Test func undeclaredMethodOnAnAuthenticatedPathStillNeedsAToken() async throws {
        let harness = try await Harness()
        try await harness.test(.live) { (client) async throws in
            let response = try await client.execute(uri: "/v1/tokens", method: .patch, headers: [:])
            #expect(response.status == .unauthorized)
        }
    }
}
