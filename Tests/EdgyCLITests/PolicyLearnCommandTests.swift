import EdgyTestSupport
import Foundation
import Testing

/// `edgy policy learn`, the built binary, real jails: the file it writes is a policy an operator
/// can drop next to `base` and run the workload with.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct PolicyLearnCommandTests {
    @Test func theProposalItWritesRunsTheWorkload() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-learn-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies/base.toml", toPath: directory + "/base.toml")

        let learned = try RunCommandTests.edgy([
            "policy", "learn", "--from", "python", "--runs", "2", "--file", "main.py=sample/python.py", "--name", "hello",
            "--output", directory + "/hello.toml",
        ])
        #expect(learned.status == 0, "\(learned.stderr)")
        #expect(learned.stderr.contains("edgy: learned `hello` from 2 runs"), "\(learned.stderr)")
        #expect(learned.stderr.contains("verified (exited 0)"), "\(learned.stderr)")
        let text = try String(contentsOfFile: directory + "/hello.toml", encoding: .utf8)
        #expect(text.contains("# Verified: the workload ran again under this policy and exited 0."))
        #expect(text.contains("\"openat\","))

        let checked = try RunCommandTests.edgy(["policy", "check", directory + "/hello.toml"])
        #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)")
        let ran = try RunCommandTests.edgy(["run", "--policy", directory + "/hello.toml", "--file", "main.py=sample/python.py"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout == "hello from python\n")
        // A program that needs what the sample did not is killed, and the report names the call.
        let other = try RunCommandTests.edgy(["run", "--json", "--policy", directory + "/hello.toml", "--", "/usr/bin/python3", "-c", "import os; os.getsid(0)"])
        #expect(other.stdout.contains("\"outcome\" : \"seccomp_violation\""), "\(other.stdout)")
        #expect(other.stdout.contains("\"seccomp_syscall\" : \"getsid\""), "\(other.stdout)")
    }

    @Test func aWorkloadThatFailsUnderItsPolicyIsAnErrorNamingHowItEnded() throws {
        let failed = try RunCommandTests.edgy(["policy", "learn", "--from", "default", "--", "/bin/sh", "-c", "echo oops >&2; exit 4"])
        #expect(failed.status == 125)
        #expect(failed.stdout.isEmpty)
        #expect(failed.stderr.contains("learning run 1 of 1 did not succeed under `default`: exited 4"), "\(failed.stderr)")
        #expect(failed.stderr.contains("oops"))

        let badRuns = try RunCommandTests.edgy(["policy", "learn", "--from", "default", "--runs", "0", "--", "/bin/true"])
        #expect(badRuns.status != 0 && badRuns.stderr.contains("--runs must be between 1 and 10"), "\(badRuns.stderr)")
        let unknown = try RunCommandTests.edgy(["policy", "learn", "--from", "nosuch", "--", "/bin/true"])
        #expect(unknown.status == 125 && unknown.stderr.contains("nosuch"), "\(unknown.stderr)")
    }

    @Test func jsonHasTheWholeResult() throws {
        let result = try RunCommandTests.edgy(["policy", "learn", "--json", "--from", "sh", "--file", "main.sh=sample/sh.sh"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["verified"] as? Bool == true)
        #expect((object["proposal"] as? String)?.contains("extends = \"base\"") == true)
        let learned = try #require(object["learned"] as? [String: Any])
        let files = try #require(learned["files"] as? [String: Any])
        #expect(files["/work/main.sh"] != nil, "\(files.keys.sorted())")
        #expect((object["removed"] as? [String: Any])?["syscalls"] as? [String] != nil)
    }

    /// `edgy ARGS…` under a seccomp filter that holds a listener: learning runs are traced.
    static func edgyUnderAListener(_ arguments: [String]) throws -> RunCommandTests.Result {
        let launcher = TestSupport.underASeccompListener
        let run = try BoundedProcess.run(launcher[0], Array(launcher.dropFirst()) + [RunCommandTests.edgy] + arguments, directory: TestSupport.repositoryRoot)
        return RunCommandTests.Result(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
    }

    /// The lines of a proposal that are policy, not comments.
    static func policyLines(_ proposal: String) -> [String] {
        proposal.split(separator: "\n").compactMap { line in
            let text = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            return text.trimmingCharacters(in: .whitespaces).isEmpty ? nil : text
        }
    }

    @Test func whereAFilterAboveHoldsTheListenerLearningTracesAndProposesTheSamePolicy() throws {
        let arguments = ["policy", "learn", "--from", "sh", "--file", "main.sh=sample/sh.sh"]
        let notified = try RunCommandTests.edgy(arguments)
        #expect(notified.status == 0, "\(notified.stderr)")
        #expect(!notified.stdout.contains("Observed through ptrace"))
        let traced = try Self.edgyUnderAListener(arguments)
        #expect(traced.status == 0, "\(traced.stderr)")
        #expect(traced.stdout.contains("# Observed through ptrace in 1 of 1 run"), "\(traced.stdout)")
        #expect(traced.stdout.contains("# Verified: the workload ran again under this policy and exited 0."), "\(traced.stdout)")
        #expect(Self.policyLines(traced.stdout) == Self.policyLines(notified.stdout))
        #expect(Self.policyLines(traced.stdout).contains { $0.contains("\"openat\",") }, "\(traced.stdout)")
    }

    @Test func aTracedRunRefusesWhatItsPolicyRefusesWithTheErrno() throws {
        // The workload fails the learning run unless mount(2) failed with EPERM (errno 1) and the
        // fork after it worked; both are traced calls, the first skipped, the second continued.
        let program = """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            failed = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == -1 and ctypes.get_errno() == 1
            sys.exit(0 if failed and os.system("true") == 0 else 3)
            """
        let traced = try Self.edgyUnderAListener(["policy", "learn", "--from", "python", "--", "/usr/bin/python3", "-c", program])
        // Under the proposal the mount attempt is a kill, so it cannot verify; it got that far
        // because the learning run itself exited 0. The verification run is traced too, so the
        // call that killed it has its name.
        #expect(traced.stderr.contains("NOT verified: seccomp_violation (mount)"), "\(traced.stderr)")
        #expect(traced.stderr.contains("warning: mount: on the deny list; refused with EPERM, not added"), "\(traced.stderr)")
        #expect(traced.stdout.contains("# Observed through ptrace"), "\(traced.stdout)")
        #expect(!Self.policyLines(traced.stdout).contains { $0.contains("\"mount\"") })
        #expect(Self.policyLines(traced.stdout).contains { $0.contains("\"wait4\",") }, "os.system's fork was traced: \(traced.stdout)")
    }

    /// A traced learning run is still the `--from` jail: the isolation probes hold (each failing
    /// one exits with its own code, which fails the learning run), and the wall limit ends it.
    @Test func aTracedLearningRunKeepsEveryOtherIsolation() throws {
        let probes = """
            n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
            [ "$(cat /proc/1/comm)" = sh ] && [ $n -lt 20 ] || exit 11
            grep -qE '^CapEff:[[:space:]]+0+$' /proc/self/status || exit 12
            grep -qE '^NoNewPrivs:[[:space:]]+1$' /proc/self/status || exit 13
            grep -qE '^Seccomp:[[:space:]]+2$' /proc/self/status || exit 14
            [ "$(id -u) $(id -g)" = "65534 65534" ] || exit 15
            cat /etc/shadow >/dev/null 2>&1 && exit 16
            (echo x > /usr/x) 2>/dev/null && exit 17
            [ "$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')" = lo ] || exit 18
            exit 0
            """
        let traced = try Self.edgyUnderAListener(["policy", "learn", "--from", "sh", "--", "/bin/sh", "-c", probes])
        #expect(traced.status == 0, "\(traced.stderr)")
        #expect(traced.stdout.contains("# Observed through ptrace"), "\(traced.stdout)")
        // The same probes fail when they should: run as root (no jail), they exit 12 at once.
        let unjailed = try BoundedProcess.run("/bin/sh", ["-c", probes], directory: "/")
        #expect(unjailed.termination.status != 0)

        let directory = try RunCommandTests().policyDirectory("short", "description = \"short\"\nextends = \"base\"\n[limits]\nwall_time_s = 0.5\n")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let slow = try Self.edgyUnderAListener(["policy", "learn", "--policies", directory, "--from", "short", "--", "/bin/sh", "-c", "sleep 5 & wait"])
        #expect(slow.status == 125)
        #expect(slow.stderr.contains("did not succeed under `short`: wall_timeout"), "\(slow.stderr)")
    }
}
