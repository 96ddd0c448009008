import EdgyModel
import EdgyTestSupport
import Foundation
import Testing

/// The built `edgy` binary, run as a user would from the repository root: real jails, real
/// cgroups, real exit statuses.
@Suite(.timeLimit(.minutes(2)))
struct RunCommandTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var edgy: String { TestSupport.productsDirectory + "/edgy" }

    /// The environment of a run of `edgy` itself, never through an `edgy helper` another test or a
    /// benchmark may have left listening (RunHelperTests test that path).
    static var directEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.merging(["EDGY_HELPER_SOCKET": "off"]) { $1 }
    }

    /// Runs `edgy ARGS…` from the repository root and collects its output.
    static func edgy(_ arguments: [String]) throws -> Result {
        let run = try BoundedProcess.run(edgy, arguments, environment: directEnvironment, directory: TestSupport.repositoryRoot)
        return Result(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
    }

    func temporaryDirectory(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return dir.path
    }

    /// A policy directory holding the shipped `base` and `name.toml` with `text`.
    func policyDirectory(_ name: String, _ text: String) throws -> String {
        let base = try String(contentsOfFile: TestSupport.repositoryRoot + "/policies/base.toml", encoding: .utf8)
        return try temporaryDirectory(["base.toml": base, "\(name).toml": text])
    }

    @Test(.tags(.root), .requiresRoot) func streamsOutputAndExitsWithTheWorkloadsCode() throws {
        let r = try Self.edgy(["run", "--policy", "policies/default.toml", "--", "/bin/sh", "-c", "echo hello; exit 3"])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stdout == "hello\n")
        #expect(r.stderr.contains("edgy: exited 3"), "\(r.stderr)")
    }

    @Test(.tags(.root), .requiresRoot) func jsonReport() throws {
        let r = try Self.edgy(["run", "--json", "--policy", "policies/default.toml", "--", "/bin/sh", "-c", "echo hello; exit 3"])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stdout.contains("\"outcome\" : \"exited\""), "\(r.stdout)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["outcome"] as? String == "exited")
        #expect(object["exit_code"] as? Int == 3)
        #expect(object["stdout"] as? String == "hello\n")
        #expect((object["policy_digest"] as? String)?.count == 64)
    }

    @Test(.tags(.root), .requiresRoot) func fileBecomesThePolicysEntry() throws {
        let r = try Self.edgy(["run", "--policy", "policies/python.toml", "--file", "main.py=sample/python.py"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "hello from python\n", "\(r.stdout) \(r.stderr)")
    }

    @Test(.tags(.root), .requiresRoot) func stdinFileReachesTheWorkload() throws {
        let dir = try temporaryDirectory(["input.txt": "line one\nline two\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.edgy([
            "run", "--policy", "policies/default.toml", "--stdin", dir + "/input.txt", "--",
            "/bin/sh", "-c", "read first; echo \"got $first\"; wc -l",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) } == ["got line one", "1"], "\(r.stdout)")
    }

    @Test(.tags(.root), .requiresRoot) func missingCommandIsASetupFailure() throws {
        let r = try Self.edgy(["run", "--policy", "policies/default.toml", "--", "/nonexistent/program"])
        #expect(r.status == 125, "\(r.stderr)")
        #expect(r.stderr.contains("execve"), "\(r.stderr)")
    }

    /// `edgy run` keeps each compiled filter in a file for the next run. A run from the kept file
    /// kills a forbidden syscall as a freshly compiled filter does, leaves the file as it was, and
    /// a damaged file is compiled again and replaced.
    @Test(.tags(.root), .requiresRoot) func keptFiltersBlockWhatCompiledOnesBlock() throws {
        let parent = try temporaryDirectory([:])
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let cache = parent + "/seccomp"
        let environment = Self.directEnvironment.merging(["EDGY_SECCOMP_CACHE": cache]) { $1 }
        func run(_ command: [String]) throws -> Result {
            let run = try BoundedProcess.run(
                Self.edgy, ["run", "--policy", "policies/default.toml", "--"] + command, environment: environment,
                directory: TestSupport.repositoryRoot)
            return Result(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
        }
        func kept() throws -> (path: String, bytes: Data, inode: UInt) {
            let names = try FileManager.default.contentsOfDirectory(atPath: cache)
            try #require(names.count == 1 && names[0].hasSuffix(".bpf"), "\(names)")
            let path = cache + "/" + names[0]
            var info = stat()
            try #require(stat(path, &info) == 0)
            return (path, try Data(contentsOf: URL(fileURLWithPath: path)), UInt(info.st_ino))
        }
        let unshare = ["/usr/bin/unshare", "-U", "/bin/true"]

        let compiled = try run(unshare)
        #expect(compiled.status == 137 && compiled.stderr.contains("seccomp_violation"), "\(compiled.stderr)")
        let written = try kept()

        let fromFile = try run(unshare)
        #expect(fromFile.status == 137 && fromFile.stderr.contains("seccomp_violation"), "\(fromFile.stderr)")
        let read = try kept()
        #expect(read.inode == written.inode && read.bytes == written.bytes)
        let allowed = try run(["/bin/sh", "-c", "echo allowed"])
        #expect(allowed.status == 0 && allowed.stdout == "allowed\n", "\(allowed.stderr)")

        var damaged = written.bytes
        damaged[damaged.count - 1] ^= 0x01
        try damaged.write(to: URL(fileURLWithPath: written.path))
        let recompiled = try run(unshare)
        #expect(recompiled.status == 137 && recompiled.stderr.contains("seccomp_violation"), "\(recompiled.stderr)")
        let replaced = try kept()
        #expect(replaced.bytes == written.bytes && replaced.inode != written.inode)
    }

    @Test(.tags(.root), .requiresRoot) func wallTimeoutExits124() throws {
        let dir = try policyDirectory("short", """
            extends = "base"
            [run]
            command = ["/bin/sleep", "100"]
            [limits]
            wall_time_s = 1
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let started = Date()
        let r = try Self.edgy(["run", "--policy", dir + "/short.toml"])
        #expect(r.status == 124, "\(r.stderr)")
        #expect(r.stderr.contains("wall_timeout"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func policyWithATypoedSyscallIsRefusedWithFileLineAndSuggestion() throws {
        let dir = try policyDirectory("typo", """
            extends = "base"
            [run]
            command = ["/bin/true"]
            [seccomp]
            allow = ["@default", "getpidd"]
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.edgy(["run", "--policy", dir + "/typo.toml"])
        #expect(r.status == 125, "\(r.stderr)")
        #expect(r.stderr.contains("\(dir)/typo.toml:5:"), "\(r.stderr)")
        #expect(r.stderr.contains("getpidd"), "\(r.stderr)")
        #expect(r.stderr.contains("did you mean `getpid`"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func policyCheckShippedDirectoryPasses() throws {
        let r = try Self.edgy(["policy", "check", "policies/"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        for name in ["base", "default", "sh", "python", "node", "c"] {
            #expect(r.stdout.contains("ok \(name) ("), "\(r.stdout)")
        }
    }

    @Test func policyCheckBadFileFailsWithTheSuggestion() throws {
        let dir = try temporaryDirectory(["bad.toml": "[limits]\nmemroy_mib = 5\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.edgy(["policy", "check", dir + "/bad.toml"])
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        let output = r.stdout + r.stderr
        #expect(output.contains("\(dir)/bad.toml:2:"), "\(output)")
        #expect(output.contains("did you mean `memory_mib`?"), "\(output)")
    }

    @Test func policyExplainSaysPtraceIsDenied() throws {
        let r = try Self.edgy(["policy", "explain", "default", "ptrace"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("ptrace: denied"), "\(r.stdout)")
        let allowed = try Self.edgy(["policy", "explain", "default", "getpid"])
        #expect(allowed.status == 0)
        #expect(!allowed.stdout.contains("denied"), "\(allowed.stdout)")
    }

    @Test func policyExplainConnectNamesTheEntryOrWhyNot() throws {
        let allowed = try Self.edgy(["policy", "explain", "egress", "--connect", "pypi.org:443"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stdout.hasPrefix("allowed: pypi.org:443/tcp by \"pypi.org:443\""), "\(allowed.stdout)")
        let port = try Self.edgy(["policy", "explain", "egress", "--connect", "pypi.org:80"])
        #expect(port.status == 1)
        #expect(port.stdout.contains("names the host but not this port"), "\(port.stdout)")
        let metadata = try Self.edgy(["policy", "explain", "egress", "--connect", "169.254.169.254:80"])
        #expect(metadata.status == 1)
        #expect(metadata.stdout.contains("169.254.0.0/16 (link-local"), "\(metadata.stdout)")
        let none = try Self.edgy(["policy", "explain", "python", "--connect", "pypi.org:443"])
        #expect(none.status == 1)
        #expect(none.stdout.contains("mode is \"none\""), "\(none.stdout)")
        let bad = try Self.edgy(["policy", "explain", "egress", "--connect", "pypi.org"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("expected HOST:PORT"), "\(bad.stderr)")
        let both = try Self.edgy(["policy", "explain", "egress", "ptrace", "--connect", "pypi.org:443"])
        #expect(both.status != 0)
    }
}

/// What the CLI's start pays for: libnftables and the five libraries it needs are loaded only
/// when egress is set up, never at start.
@Suite struct CLILibraryTests {
    @Test func libnftablesIsNotLoadedAtStart() throws {
        let run = try BoundedProcess.run(RunCommandTests.edgy, ["--help"], environment: ["LD_DEBUG": "libs"])
        #expect(run.termination.status == 0, "\(run.stderr)")
        // The loader's trace is there (so the check below can fail), and names no nftables library.
        #expect(run.stderr.contains("libseccomp.so"), "\(run.stderr.prefix(2000))")
        for library in ["libnftables", "libnftnl", "libmnl", "libjansson", "libgmp", "libxtables"] {
            #expect(!run.stderr.contains(library), "\(library) is loaded at start")
        }
    }
}
