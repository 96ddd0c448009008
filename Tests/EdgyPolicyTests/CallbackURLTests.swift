import EdgyPolicy
import Testing

/// `callback_url` and `webhook_allow`: what is a URL, and where a callback may go.
struct CallbackURLTests {
    @Test(arguments: [
        ("https://hooks.example.com/edgy?x=1", "hooks.example.com", 443, true),
        ("http://HOOKS.example.com:8080/", "hooks.example.com", 8080, false),
        ("http://[2606:4700::1111]/x", "2606:4700::1111", 80, false),
        ("https://93.184.216.34/", "93.184.216.34", 443, true),
    ])
    func wellFormedURLsParse(text: String, host: String, port: Int, secure: Bool) throws {
        let url = try CallbackURL.parse(text)
        #expect(url.host == host && url.port == port && url.secure == secure)
        #expect(CallbackAllowlist().refusal(url) == nil)
    }

    @Test(arguments: [
        "", "ftp://example.com/", "http://user:pw@example.com/", "http:///path", "http://exa mple.com/", "http://example.com/#frag",
        "http://ex_ample.com/", "http://example.com:0/", "http://example.com:70000/", "//example.com/", "javascript:alert(1)",
        "http://é.example/",
    ])
    func malformedURLsAreRefusedWithAReason(text: String) {
        #expect(throws: CallbackURLError.self) { try CallbackURL.parse(text) }
    }

    @Test(arguments: [
        "http://127.0.0.1/", "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/", "http://0.0.0.0/", "http://224.0.0.1/", "http://localhost/", "http://a.localhost/", "http://[::1]/",
        "http://[fe80::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://[2001:db8::1]/", "http://[2002:a00:1::]/",
    ])
    func privateLoopbackAndMetadataAddressesAreRefusedByDefault(text: String) throws {
        let url = try CallbackURL.parse(text)
        #expect(CallbackAllowlist().refusal(url) != nil, "\(text)")
    }

    @Test func theOperatorsAllowlistLetsChosenAddressesThrough() throws {
        let allow = try CallbackAllowlist.parse(["127.0.0.1", "10.0.0.0/8", "::1", "hooks.internal"])
        #expect(allow.refusal(try CallbackURL.parse("http://127.0.0.1:9000/")) == nil)
        #expect(allow.refusal(try CallbackURL.parse("http://10.9.8.7/")) == nil)
        #expect(allow.refusal(try CallbackURL.parse("http://[::1]/")) == nil)
        #expect(allow.refusal(try CallbackURL.parse("http://192.168.0.1/")) != nil)
        // A name's answers are checked at delivery; an allowed name may resolve anywhere.
        #expect(allow.refusal(address: [10, 1, 1, 1], host: "hooks.internal") == nil)
        #expect(CallbackAllowlist().refusal(address: [10, 1, 1, 1], host: "evil.example") != nil, "DNS pointing at a private address")
        #expect(CallbackAllowlist().refusal(address: [93, 184, 216, 34], host: "example.com") == nil)
        #expect(throws: CallbackURLError.self) { try CallbackAllowlist.parse(["10.0.0.0/33"]) }
        #expect(throws: CallbackURLError.self) { try CallbackAllowlist.parse(["not a host!"]) }
    }
}
