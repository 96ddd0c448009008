import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import EdgyAPI

@Suite struct AuthLimiterTests {
    @Test func validTokenIsServedAfterTheAddressHitTheLimit() async throws {
        var config = APIConfiguration()
        config.authFailureLimit = 2
        config.authFailureWindow = .seconds(60)
        let harness = try await Harness(config: config)
        try await harness.test(.live) { (client) async throws in
            for _ in 0..<2 { #expect(try await client.get("/v1/tasks", token: nil).status == .unauthorized) }
            #expect(try await client.get("/v1/tasks", token: "edgy_guess").status == .tooManyRequests)
            #expect(try await client.get("/v1/tasks", token: Harness.admin).status == .ok)
            #expect(try await client.get("/v1/tasks").status == .ok)
            // Valid requests neither count nor lift the limit for failures.
            #expect(try await client.get("/v1/tasks", token: nil).status == .tooManyRequests)
        }
    }

    @Test(arguments: [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80:0:0:0::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ])
    func clientKeys(address: String, key: String) {
        #expect(AuthFailureLimiter.key(for: address) == key)
    }

    @Test func ipv6AddressesShareTheirSlash64() {
        let limiter = AuthFailureLimiter(limit: 2, window: .seconds(60))
        let start = ContinuousClock.now
        limiter.recordFailure("2001:db8:0:1::a", now: start)
        #expect(limiter.recordFailure("2001:db8:0:1::b", now: start) == true)
        #expect(limiter.retryAfter("2001:db8:0:1:dead:beef:0:1", now: start) != nil)
        #expect(limiter.retryAfter("2001:db8:0:2::a", now: start) == nil)
    }

    @Test func tableStaysBoundedUnderManyAddresses() {
        let bound = 1_000
        let limiter = AuthFailureLimiter(limit: 3, window: .seconds(60), maxEntries: bound)
        let start = ContinuousClock.now
        for index in 0..<100_000 {
            let address = "10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)"
            limiter.recordFailure(address, now: start + .milliseconds(index))
            #expect(limiter.count <= bound)
        }
        #expect(limiter.count == bound)
        // The newest windows are kept, the oldest went first.
        let last = start + .milliseconds(100_000)
        #expect(limiter.recordFailure("10.1.134.159", now: last) == false)
        #expect(limiter.recordFailure("10.1.134.159", now: last) == true)
    }

    @Test func finishedWindowsAreForgotten() {
        let limiter = AuthFailureLimiter(limit: 3, window: .seconds(1))
        let start = ContinuousClock.now
        for index in 0..<500 { limiter.recordFailure("10.0.\(index >> 8).\(index & 255)", now: start) }
        limiter.recordFailure("10.9.9.9", now: start + .seconds(2))
        #expect(limiter.count == 1)
    }
}
