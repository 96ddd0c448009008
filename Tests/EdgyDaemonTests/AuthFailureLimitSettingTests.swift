import EdgyDaemon
import Testing

/// `auth_failure_limit`: failed authentications per address and minute before 429 (0: off).
@Suite("Auth failure limit setting")
struct AuthFailureLimitSettingTests {
    @Test func defaultsToTenAndComesFromTheEnvironment() throws {
        #expect(DaemonConfiguration().authFailureLimit == 10)
        var settings = DaemonConfiguration()
        try settings.apply(environment: ["EDGY_AUTH_FAILURE_LIMIT": "0"])
        #expect(settings.authFailureLimit == 0)
        try settings.validate()
    }

    @Test func aNegativeOrNonNumericLimitIsRefused() throws {
        var settings = DaemonConfiguration()
        try settings.set("auth_failure_limit", "-1", source: "test")
        #expect(throws: ConfigurationError.self) { try settings.validate() }
        #expect(throws: ConfigurationError.self) { try settings.set("auth_failure_limit", "many", source: "test") }
    }
}
