import EdgyDaemon
import EdgyModel
import EdgyStore
import Foundation
import Testing

/// Tenant quotas in edgyd's configuration file: defaults, `[tenants.NAME]` overrides and errors.
@Suite("Tenant settings")
struct TenantSettingsTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edgyd-tenants-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func defaultsAndOverrides() throws {
        var settings = DaemonConfiguration()
        #expect(settings.tenantQuotas.quota(for: "any") == .init(maxQueued: 1_000, maxStored: 10_000, maxBytes: 1 << 30))
        let path = try write("""
            tenant_max_bytes = 1000000
            [tenants.acme]
            max_queued = 5
            max_bytes = 2048
            [tenants.globex]
            max_stored = 7
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try settings.apply(file: path)
        try settings.validate()
        #expect(settings.tenantQuotas.quota(for: "acme") == .init(maxQueued: 5, maxStored: 10_000, maxBytes: 2048))
        #expect(settings.tenantQuotas.quota(for: "globex") == .init(maxQueued: 1_000, maxStored: 7, maxBytes: 1_000_000))
        #expect(settings.tenantQuotas.quota(for: "other") == .init(maxQueued: 1_000, maxStored: 10_000, maxBytes: 1_000_000))
    }

    @Test func badTenantTablesAreErrorsNamingTheKey() throws {
        for (text, expected) in [
            ("[tenants.acme]\nmax_cpu = 3\n", "tenants.acme.max_cpu"),
            ("[tenants.acme]\nmax_bytes = 0\n", "tenants.acme.max_bytes"),
            ("[tenants.acme]\nmax_bytes = \"lots\"\n", "tenants.acme.max_bytes"),
            ("tenants = 3\n", "tenants"),
            ("[tenants]\nacme = 3\n", "tenants.acme"),
        ] {
            let path = try write(text)
            defer { try? FileManager.default.removeItem(atPath: path) }
            var settings = DaemonConfiguration()
            do {
                try settings.apply(file: path)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description)")
            }
        }
        var settings = DaemonConfiguration()
        try settings.set("tenant_max_bytes", "0", source: "test")
        #expect(throws: ConfigurationError.self) { try settings.validate() }
    }

    /// Text that makes the vendored TOML parser assert is an error with file and line, not an abort.
    @Test(arguments: [("[!tenants]\n", 1), ("listen = \"127.0.0.1:1\"\npolicies = [\"a\", }\n", 2)])
    func textTheParserCannotTakeIsAnErrorWithItsLine(text: String, line: Int) throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var settings = DaemonConfiguration()
        #expect {
            try settings.apply(file: path)
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix("\(path):\(line): ") == true
        }
    }
}
