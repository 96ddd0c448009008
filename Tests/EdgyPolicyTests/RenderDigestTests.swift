import EdgyPolicy
import Testing

@Suite struct RenderDigestTests {
    static let full = """
        description = "every key, \\"quoted\\""
        [run]
        command = ["/usr/bin/python3", "-u", "{entry}"]
        entry = "src/main.py"
        workdir = "/w"
        env = { PATH = "/usr/bin", "QUOTED_KEY" = "a\\tb" , HOME = "/w" }
        task_env = ["SEED"]
        allow_command_override = true
        hostname = "box"
        [limits]
        wall_time_s = 2.5
        cpu_time_s = 1
        memory_mib = 128
        pids = 8
        open_files = 64
        file_size_mib = 1
        workdir_mib = 2
        tmp_mib = 3
        stdout_kib = 4
        stderr_kib = 5
        output_overflow = "kill"
        pending_signals = 9
        mqueue_kib = 10
        memlock_kib = 11
        [[mounts]]
        source = "/usr"
        destination = "/host/usr"
        required = false
        [[tmpfs]]
        destination = "/scratch"
        size_mib = 7
        [network]
        mode = "egress"
        allow = ["pypi.internal:443", "10.1.2.0/24:5432"]
        [identity]
        uid = 1000
        gid = 1001
        user_namespace = true
        [seccomp]
        default_action = "errno:ENOSYS"
        allow = ["@default", "read"]
        deny = ["ptrace"]
        socket_families = ["unix"]
        ioctl_deny = ["TIOCSTI"]
        allow_namespace_clone = false
        [retry]
        max_attempts = 2
        retry_on = ["wall_timeout", "signaled"]
        [access]
        roles = ["admin", "reader"]
        [dependencies]
        format = "package_json"
        manifest = "deps/package.json"
        lockfile = "deps/package-lock.json"
        install = ["/usr/bin/npm", "install", "--prefix", "{layer}", "--registry", "{registry}"]
        registry = "npm-mirror"
        allow = ["npm.internal:443"]
        mount = "/opt/deps"
        env = { NODE_PATH = "/opt/deps/node_modules" }
        runtime = "/usr/bin/node"
        layer_mib = 64
        limits = { wall_time_s = 2, memory_mib = 100 }
        [outputs]
        paths = ["out/**", "*.png"]
        max_files = 20
        max_mib = 8
        time_ms = 500
        """

    func load(_ text: String, name: String = "t", directory: String? = nil) throws -> LoadedPolicy {
        try PolicyLoader.parse(text, name: name, file: "\(name).toml", directory: directory)
    }

    @Test func roundTripsEveryKey() throws {
        let policy = try load(Self.full).policy
        #expect(policy.run.env["QUOTED_KEY"] == "a\tb")
        #expect(policy.seccomp.defaultAction == .errno(38, "ENOSYS"))
        let again = try load(policy.renderTOML()).policy
        #expect(again == policy, "\(policy.renderTOML())")
    }

    @Test func roundTripsDefaults() throws {
        let policy = try load("").policy
        #expect(policy == Policy(name: "t"))
        #expect(try load(policy.renderTOML()).policy == policy)
    }

    /// What `edgy policy show` prints loads on its own (no policy directory to find a parent in)
    /// into the same policy, with the same digest.
    @Test(arguments: ShippedPolicyTests.names)
    func roundTripsShippedPolicies(name: String) throws {
        let policy = try PolicyLoader.load(name: name, directory: shippedPolicies).policy
        let text = policy.renderTOML()
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("extends") }, "\(text)")
        let again = try load(text, name: name, directory: nil).policy
        var expected = policy
        expected.extends = nil
        #expect(again == expected)
        #expect(again.digest == policy.digest)
    }

    @Test func digestIgnoresFormattingAndKeyOrder() throws {
        let a = try load("[limits]\npids = 8\nmemory_mib = 100\n[network]\nmode = \"none\"\n")
        let b = try load("""
            # reordered, commented, explicit default
            [network]
            mode   =   "none"   # no interfaces
            [limits]
            memory_mib = 100
            pids = 8
            """)
        #expect(a.digest == b.digest)
        #expect(a.digest.count == 64 && a.digest.allSatisfy(\.isHexDigit))
        let c = try load("[limits]\npids = 9\nmemory_mib = 100\n")
        #expect(c.digest != a.digest)
    }

    @Test func digestIgnoresNameButNotDescription() throws {
        let a = try load("description = \"x\"\n", name: "a")
        #expect(a.digest == (try load("description = \"x\"\n", name: "b")).digest)
        #expect(a.digest != (try load("description = \"y\"\n", name: "a")).digest)
    }
}
