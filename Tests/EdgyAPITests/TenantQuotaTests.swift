import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import EdgyAPI

/// Per-tenant quotas through the API: a clear 429 naming the quota, per tenant, and freed again
/// by deleting tasks.
@Suite("Tenant quotas")
struct TenantQuotaTests {
    @Test func storedAndByteQuotasAnswer429NamingTheQuota() async throws {
        var config = APIConfiguration()
        config.tenantQuotas = TenantQuotas(
            defaults: .init(maxStored: 2, maxBytes: 1 << 20),
            overrides: ["globex": .init(maxBytes: 40)])
        let harness = try await Harness(config: config)
        try await harness.test { client in
            let first = try await client.postJSON("/v1/tasks", #"{"input":"echo 1"}"#)
            #expect(first.status == .created)
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo 2"}"#).status == .created)
            let refused = try await client.postJSON("/v1/tasks", #"{"input":"echo 3"}"#)
            #expect(refused.status == .tooManyRequests)
            #expect(try refused.error.code == "quota_exceeded")
            #expect(try refused.error.field == "tenant_max_stored")
            #expect(try refused.error.message.contains("tenant_max_stored"))
            // Deleting a task frees its place.
            #expect(try await client.send(.delete, "/v1/tasks/\(try first.taskID)").status == .noContent)
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo 3"}"#).status == .created)

            // globex's own byte quota (its stored quota is the default).
            let small = try await client.postJSON("/v1/tasks", #"{"input":"echo small"}"#, token: Harness.otherTenant)
            #expect(small.status == .created)
            let big = try await client.postJSON("/v1/tasks", #"{"input":"echo a longer script that does not fit"}"#, token: Harness.otherTenant)
            #expect(big.status == .tooManyRequests)
            #expect(try big.error.field == "tenant_max_bytes")
        }
    }
}
