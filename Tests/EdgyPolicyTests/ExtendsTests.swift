import EdgyPolicy
import Foundation
import Testing

@Suite struct ExtendsTests {
    static let files = [
        "root": """
            description = "root"
            [run]
            command = ["/bin/sh", "{entry}"]
            entry = "main.sh"
            env = { PATH = "/bin", A = "root" }
            [limits]
            memory_mib = 100
            pids = 10
            [[mounts]]
            source = "/usr"
            [[mounts]]
            source = "/lib"
            required = false
            [seccomp]
            allow = ["@default", "ptrace"]
            deny = ["ptrace"]
            """,
        "middle": """
            extends = "root"
            [limits]
            memory_mib = 200
            [[mounts]]
            source = "/opt"
            [run]
            env = { A = "middle", B = "middle" }
            """,
        "leaf": """
            description = "leaf"
            extends = "middle"
            [limits]
            pids = 5
            [run]
            env = { B = "leaf" }
            [seccomp]
            deny = ["getpid"]
            """,
    ]

    @Test func threeLevelsOverride() throws {
        let dir = try policyDirectory(Self.files)
        let leaf = try PolicyLoader.load(name: "leaf", directory: dir).policy
        #expect(leaf.name == "leaf")
        #expect(leaf.extends == "middle")
        #expect(leaf.description == "leaf")
        #expect(leaf.run.command == ["/bin/sh", "{entry}"], "inherited from root")
        #expect(leaf.limits.memoryMib == 200, "middle replaces root's scalar")
        #expect(leaf.limits.pids == 5, "leaf replaces root's scalar")
        #expect(leaf.limits.cpuTimeS == Policy.Limits().cpuTimeS, "unset keys keep the defaults")
        #expect(leaf.mounts == [Policy.Mount(source: "/opt")], "arrays replace as a whole")
        #expect(leaf.run.env == ["PATH": "/bin", "A": "middle", "B": "leaf"], "env merges key by key")
        #expect(leaf.seccomp.allow == ["@default", "ptrace"])
        #expect(leaf.seccomp.deny == ["getpid"])
        let middle = try PolicyLoader.load(name: "middle", directory: dir).policy
        #expect(middle.description == "root")
    }

    @Test func warningsPointAtTheFileThatSetTheKey() throws {
        let dir = try policyDirectory(Self.files)
        let leaf = try PolicyLoader.load(name: "leaf", directory: dir)
        let ptrace = leaf.warnings.first { $0.message.contains("`ptrace`") }
        #expect(ptrace?.file.hasSuffix("root.toml") == true, "\(leaf.warnings)")
        #expect(ptrace?.line == 15)
    }

    @Test func cycleIsRejected() throws {
        let dir = try policyDirectory([
            "a": "extends = \"b\"\n",
            "b": "description = \"b\"\nextends = \"a\"\n",
        ])
        let diagnostics = errors(of: "extends = \"b\"\n", name: "a", directory: dir)
        let cycle = diagnostics.first { $0.message.contains("extends cycle") }
        #expect(cycle?.message == "extends cycle: a -> b -> a", "\(diagnostics)")
        #expect(cycle?.line == 2)
        #expect(cycle?.file.hasSuffix("b.toml") == true)
    }

    @Test func selfExtendIsACycle() throws {
        let dir = try policyDirectory(["a": "extends = \"a\"\n"])
        let diagnostics = errors(of: "extends = \"a\"\n", name: "a", directory: dir)
        #expect(diagnostics.contains { $0.message == "extends cycle: a -> a" })
    }

    @Test func parentErrorsAreReported() throws {
        let dir = try policyDirectory(["p": "[limits]\npids = \"many\"\n", "c": "extends = \"p\"\n"])
        do {
            _ = try PolicyLoader.load(name: "c", directory: dir)
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.contains { $0.file.hasSuffix("p.toml") && $0.line == 2 })
            #expect(error.diagnostics.contains { $0.file.hasSuffix("c.toml") && $0.message.contains("which has errors") })
        }
    }

    @Test func noDirectoryMeansExtendsCannotResolve() {
        #expect(errors(of: "extends = \"base\"\n").contains { $0.message.contains("no policy directory") })
    }

    @Test func loadAllReportsBadFilesOnce() throws {
        let dir = try policyDirectory([
            "p": "[limits]\npids = \"many\"\n", "c1": "extends = \"p\"\n", "c2": "extends = \"p\"\n", "ok": "",
        ])
        let (policies, diagnostics) = PolicyDirectory(path: dir).loadAll()
        #expect(Array(policies.keys) == ["ok"])
        #expect(diagnostics.filter { $0.file.hasSuffix("p.toml") }.count == 1)
    }
}

@Suite struct ArgvTests {
    @Test func replacesEntryAndHonoursOverride() throws {
        let c = try PolicyLoader.load(name: "c", directory: shippedPolicies).policy.run
        #expect(c.argv() == ["/bin/sh", "-c", "/usr/bin/gcc -O2 -o /tmp/prog main.c && exec /tmp/prog"])
        // c takes a multi-step task's own commands (gcc, then ./prog); sh takes none.
        #expect(c.argv(override: ["/bin/true"]) == ["/bin/true"])
        let sh = try PolicyLoader.load(name: "sh", directory: shippedPolicies).policy.run
        #expect(sh.argv(override: ["/bin/true"]) == sh.argv(), "sh does not allow command override")
        let d = try PolicyLoader.load(name: "default", directory: shippedPolicies).policy.run
        #expect(d.argv() == ["/bin/sh", "main.sh"])
        #expect(d.argv(override: ["/bin/echo", "{entry}"]) == ["/bin/echo", "main.sh"])
    }

    /// Every `{entry}` of an argument is replaced, next to any text, multi-byte characters included;
    /// a brace that does not open `{entry}` stays.
    @Test func replacesEveryEntryByteForByte() throws {
        var run = try PolicyLoader.load(name: "default", directory: shippedPolicies).policy.run
        run.entry = "dossier/é.sh"
        run.command = ["{entry}", "-c", "é{entry}{entry}x {entr} {", "{entry", "plain"]
        #expect(run.argv() == ["dossier/é.sh", "-c", "édossier/é.shdossier/é.shx {entr} {", "{entry", "plain"])
    }
}

@Suite struct NameTests {
    @Test(arguments: ["../etc/passwd", "", ".hidden", "a/b"])
    func rejectsNamesThatLeaveTheDirectory(name: String) {
        #expect(throws: PolicyLoadError.self) { try PolicyLoader.load(name: name, directory: shippedPolicies) }
    }
}

@Suite struct PolicyFilePathTests {
    static let cwd = FileManager.default.currentDirectoryPath

    /// A policy file's name (without its extension) and its directory, made absolute, read from
    /// its path alone.
    @Test(arguments: [
        ("policies/c.toml", "c", "\(cwd)/policies"), ("c.toml", "c", cwd), ("/abs/dir/c.toml", "c", "/abs/dir"),
        ("/c.toml", "c", "/"), ("a.b.toml", "a.b", cwd), ("dir/.toml", ".toml", "\(cwd)/dir"), ("noext", "noext", cwd),
        ("dir/", "dir", cwd), ("../x/c.toml", "c", "\(cwd)/../x"), ("dir.d/file", "file", "\(cwd)/dir.d"),
        ("./c.toml", "c", cwd), ("dir/é.toml", "é", "\(cwd)/dir"), ("a//b.toml", "b", "\(cwd)/a"), ("/x/./y/../c.toml", "c", "/x/y/.."),
        ("trailing.", "trailing.", cwd),
    ])
    func nameAndDirectory(_ path: String, _ name: String, _ directory: String) {
        let found = PolicyLoader.nameAndDirectory(of: path)
        #expect(found.name == name)
        #expect(found.directory == directory)
    }

    /// The name and the directory are the ones `URL(fileURLWithPath:)` gives, which `load(file:)`
    /// used before, wherever the path has no `.` or `..` component (URL removes those, but only
    /// from relative paths).
    @Test(arguments: ["policies/c.toml", "c.toml", "/abs/dir/c.toml", "/c.toml", "a.b.toml", "dir/.toml", "noext", "dir/", "dir.d/file", "dir/é.toml"])
    func agreesWithURL(_ path: String) {
        let url = URL(fileURLWithPath: path)
        let found = PolicyLoader.nameAndDirectory(of: path)
        #expect(found.name == url.deletingPathExtension().lastPathComponent)
        #expect(found.directory == url.deletingLastPathComponent().path)
    }
}
