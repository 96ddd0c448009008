import EdgyPolicy
import Testing

@Suite struct WarningTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int
        var message: String
        var testDescription: String { message }
    }

    @Test(arguments: [
        Case(text: "[seccomp]\nallow = [\"@default\", \"ptrace\"]\n", line: 2, message: "[seccomp] allow: allows `ptrace`"),
        Case(text: "[seccomp]\nallow_namespace_clone = true\n", line: 2, message: "allow_namespace_clone: lets the workload create namespaces"),
        Case(text: "[seccomp]\ndefault_action = \"log\"\n", line: 2, message: "default_action: \"log\" allows every syscall"),
        Case(text: "[identity]\nuid = 0\nuser_namespace = false\n", line: 2, message: "real root on the host"),
        Case(text: "[network]\nmode = \"loopback\"\n[limits]\npids = 1000\n", line: 2, message: "[network] mode: network \"loopback\""),
        Case(text: "[seccomp]\nallow = [\"@default\", \"getpid\"]\ndeny = [\"getpid\"]\n", line: 3, message: "`getpid` is both allowed and denied"),
        Case(text: "[network]\nmode = \"egress\"\nallow = [\"0.0.0.0/0:443\"]\n", line: 3, message: "[network] allow: a broad grant: \"0.0.0.0/0:443\" allows 4294967296 addresses"),
        Case(text: "[network]\nmode = \"egress\"\nallow = [\"*.com:443\"]\n", line: 3, message: "allows every name under .com"),
        Case(text: "[network]\nmode = \"egress\"\n", line: 2, message: "\"egress\" with an empty allow list reaches nothing"),
        Case(text: "[network]\nmode = \"loopback\"\nallow = [\"pypi.org:443\"]\n", line: 3, message: "is used only with mode = \"egress\""),
    ])
    func warns(_ c: Case) throws {
        let loaded = try PolicyLoader.parse(c.text, name: "w", file: "w.toml", directory: nil)
        let warning = loaded.warnings.first { $0.description.contains(c.message) }
        #expect(warning != nil, "\(loaded.warnings.map(\.description))")
        #expect(warning?.severity == .warning)
        #expect(warning?.line == c.line)
        #expect(warning?.description.hasPrefix("w.toml:\(c.line): warning: ") == true)
    }

    @Test func deniedDangerousSyscallDoesNotWarn() throws {
        let loaded = try PolicyLoader.parse("[seccomp]\nallow = [\"@default\"]\ndeny = [\"ptrace\"]\n", name: "w", file: "w.toml", directory: nil)
        #expect(loaded.warnings.isEmpty)
    }

    @Test func loopbackWithSmallLimitsIsFine() throws {
        let loaded = try PolicyLoader.parse("[network]\nmode = \"loopback\"\n", name: "w", file: "w.toml", directory: nil)
        #expect(loaded.warnings.isEmpty)
    }

    /// A group that grants a dangerous syscall warns too; which groups do depends on the catalog.
    @Test func dangerousSyscallThroughAGroupWarns() throws {
        let dangerous: Set<String> = ["ptrace", "bpf", "userfaultfd", "io_uring_setup", "keyctl", "mount"]
        guard let (group, name) = SyscallCatalog.groups.keys.sorted().lazy
            .compactMap({ g in SyscallCatalog.expand([g]).intersection(dangerous).sorted().first.map { (g, $0) } }).first
        else { return }
        let loaded = try PolicyLoader.parse("[seccomp]\nallow = [\"\(group)\", \"read\", \"write\", \"execve\"]\ndeny = []\n", name: "w", file: "w.toml", directory: nil)
        #expect(loaded.warnings.contains { $0.message.contains("`\(name)` through `\(group)`") })
    }
}
