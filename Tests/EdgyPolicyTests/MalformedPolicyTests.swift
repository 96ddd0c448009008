import EdgyPolicy
import Testing

@Suite struct MalformedPolicyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var text: String
        var line: Int?
        var message: String
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "unknown key with suggestion", text: """
            description = "x"

            [limits]
            memroy_mib = 5
            """, line: 4, message: "[limits] memroy_mib: unknown key `memroy_mib` in [limits] (did you mean `memory_mib`?)"),
        Case(label: "wrong type", text: """
            [run]
            entry = "main.py"

            [limits]
            pids = 4
            memory_mib = "lots"
            """, line: 6, message: "[limits] memory_mib: expected a positive integer, got \"lots\""),
        Case(label: "negative limit", text: "[limits]\nwall_time_s = -1\n", line: 2, message: "expected a positive number, got -1"),
        Case(label: "limit above maximum", text: "[limits]\npids = 10000000\n", line: 2, message: "above the maximum"),
        Case(label: "bad enum value", text: "[network]\nmode = \"host\"\n", line: 2, message: "[network] mode: unknown value \"host\""),
        Case(label: "IPv6 egress destination", text: "[network]\nmode = \"egress\"\nallow = [\"pypi.org:443\", \"[::1]:80\"]\n", line: 3,
             message: "[network] allow: \"[::1]:80\": IPv6 destinations are not supported: jails have IPv4 egress only"),
        Case(label: "egress port out of range", text: "[network]\nmode = \"egress\"\nallow = [\"pypi.org:99999\"]\n", line: 3,
             message: "expected a port (1-65535)"),
        Case(label: "egress CIDR with host bits", text: "[network]\nallow = [\"10.1.2.3/24\"]\n", line: 2,
             message: "no host bits past the prefix"),
        Case(label: "typo'd syscall", text: """
            [seccomp]
            allow = [
              "read",
              "ptrce",
            ]
            """, line: 4, message: "unknown syscall `ptrce` (did you mean `ptrace`?)"),
        Case(label: "unknown group", text: "[seccomp]\nallow = [\"@defualt\"]\n", line: 2, message: "unknown syscall group `@defualt` (did you mean `@default`?)"),
        Case(label: "missing extends parent", text: "description = \"x\"\nextends = \"nope\"\n", line: 2, message: "extends: extends `nope`, but there is no"),
        Case(label: "relative mount path", text: "[[mounts]]\nsource = \"/usr\"\n\n[[mounts]]\nsource = \"usr/lib\"\n", line: 5, message: "[[mounts]] source: expected an absolute path, got \"usr/lib\""),
        Case(label: "dotdot in workdir", text: "[run]\nworkdir = \"/work/../etc\"\n", line: 2, message: "must not contain `..`"),
        Case(label: "unknown errno", text: "[seccomp]\ndefault_action = \"errno:EPRM\"\n", line: 2, message: "unknown errno name `EPRM` (did you mean `EPERM`?)"),
        Case(label: "unknown action", text: "[seccomp]\ndefault_action = \"kill\"\n", line: 2, message: "unknown action \"kill\""),
        Case(label: "bad TOML syntax", text: "description = \"x\"\n[limits\npids = 3\n", line: 2, message: "TOML syntax error"),
        Case(label: "unknown table", text: "[limit]\npids = 3\n", line: 1, message: "unknown table [limit] (did you mean `limits`?)"),
        Case(label: "unknown top-level key", text: "descripton = \"x\"\n", line: 1, message: "unknown key `descripton` (did you mean `description`?)"),
        Case(label: "entry placeholder without entry", text: "[run]\ncommand = [\"/bin/sh\", \"{entry}\"]\n", line: 2, message: "[run] command: uses {entry}, but [run] entry is not set"),
        Case(label: "relative program", text: "[run]\ncommand = [\"python3\"]\n", line: 2, message: "must be an absolute path"),
        Case(label: "env wrong value type", text: "[run]\nenv = { A = 1 }\n", line: 2, message: "env.A: expected a string, got 1"),
        Case(label: "retry_on unknown outcome", text: "[retry]\nretry_on = [\"timeout\"]\n", line: 2, message: "unknown outcome `timeout`"),
        Case(label: "jail start needs write", text: "[seccomp]\nallow = [\"@default\"]\ndeny = [\"write\"]\n", line: 3, message: "[seccomp] deny: `write` must be allowed"),
        Case(label: "jail start needs execve", text: "[seccomp]\nallow = [\"read\", \"write\"]\n", line: 2, message: "[seccomp] allow: `execve` must be allowed"),
        Case(label: "unknown role", text: "[access]\nroles = [\"admn\"]\n", line: 2, message: "unknown role `admn` (did you mean `admin`?)"),
        Case(label: "unknown socket family", text: "[seccomp]\nsocket_families = [\"inet7\"]\n", line: 2, message: "unknown socket family `inet7`"),
        // Families and ioctls the seccomp compiler cannot translate are refused here, not at every attempt.
        Case(label: "socket family the compiler lacks", text: "description = \"d\"\n[seccomp]\nsocket_families = [\"unix\", \"vsock\"]\n", line: 3, message: "unknown socket family `vsock`"),
        Case(label: "unknown ioctl", text: "[seccomp]\nioctl_deny = [\"TIOCSTI\", \"TIOCFOO\"]\n", line: 2, message: "unknown ioctl request `TIOCFOO`"),
        Case(label: "tmpfs without destination", text: "[[tmpfs]]\nsize_mib = 4\n", line: 1, message: "[[tmpfs]]: missing required key `destination`"),
        Case(label: "unknown mount key", text: "[[mounts]]\nsource = \"/usr\"\nreadonly = true\n", line: 3, message: "unknown key `readonly` in [[mounts]]"),
        Case(label: "uid out of range", text: "[identity]\nuid = -1\n", line: 2, message: "expected an id from 0"),
        Case(label: "overflow value", text: "[limits]\noutput_overflow = \"drop\"\n", line: 2, message: "unknown value \"drop\""),
        Case(label: "env as a sub-table", text: "[run]\nentry = \"m\"\n\n[run.env]\nA = \"x\"\nB = 3\n", line: 6, message: "env.B: expected a string, got 3"),
        Case(label: "inline table", text: "description = \"d\"\nrun = { entry = 5 }\n", line: 2, message: "[run] entry: expected a string, got 5"),
        Case(label: "after a multi-line string", text: "description = \"\"\"\nx = [\n\"\"\"\n[limits]\npids = true\n", line: 5, message: "[limits] pids: expected a positive integer, got true"),
        Case(label: "duplicate mount destination", text: "[[mounts]]\nsource = \"/a\"\n[[mounts]]\nsource = \"/a\"\n", line: 3, message: "destination /a is mounted twice"),
        Case(label: "table given a scalar", text: "limits = 5\n", line: 1, message: "expected a table [limits], got 5"),
        Case(label: "mount under /tmp", text: "[[mounts]]\nsource = \"/usr\"\n\n[[mounts]]\nsource = \"/opt\"\ndestination = \"/tmp/opt\"\n",
             line: 6, message: "[[mounts]] destination: /tmp/opt is under /tmp, a writable tmpfs mounted over it"),
        Case(label: "mount under the workdir", text: "[run]\nworkdir = \"/srv/job\"\n\n[[mounts]]\nsource = \"/srv/job/data\"\n",
             line: 5, message: "[[mounts]] destination: /srv/job/data is under /srv/job"),
        Case(label: "mount at /tmp", text: "[[mounts]]\nsource = \"/usr\"\ndestination = \"/tmp\"\n",
             line: 3, message: "/tmp is the working directory or /tmp"),
        Case(label: "tmpfs under the workdir", text: "[[tmpfs]]\ndestination = \"/work/cache\"\n",
             line: 2, message: "[[tmpfs]] destination: /work/cache is under /work"),
    ]

    @Test(arguments: cases)
    func reportsLineAndMessage(_ c: Case) throws {
        let dir = try policyDirectory([:])
        let diagnostics = errors(of: c.text, directory: dir)
        let match = diagnostics.first { $0.description.contains(c.message) }
        #expect(match != nil, "no diagnostic contains \(c.message): \(diagnostics.map(\.description))")
        #expect(match?.line == c.line, "\(match?.description ?? "")")
        #expect(match?.file == "policies/t.toml")
        #expect(match?.severity == .error)
    }

    @Test func collectsAllErrorsOfAFile() {
        let diagnostics = errors(of: """
            [limits]
            memory_mib = "lots"
            pids = 0

            [network]
            mode = "host"
            """)
        #expect(diagnostics.map(\.line) == [2, 3, 6])
    }

    @Test func descriptionShape() {
        let d = PolicyDiagnostic(file: "policies/python.toml", line: 14, key: "[limits] memory_mib",
                                 message: "expected a positive integer, got \"lots\"")
        #expect(d.description == "policies/python.toml:14: [limits] memory_mib: expected a positive integer, got \"lots\"")
        let w = PolicyDiagnostic(severity: .warning, file: "p.toml", message: "m")
        #expect(w.description == "p.toml: warning: m")
    }
}
