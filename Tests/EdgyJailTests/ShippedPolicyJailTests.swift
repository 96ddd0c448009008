import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyTestSupport
import Glibc
import Testing

/// Every shipped policy, loaded from `policies/` as an operator would, runs its sample program
/// from `sample/` in a real jail with the real cgroup manager: the policy is only useful if its
/// interpreter or compiler actually works under its own mounts, limits and seccomp filter.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct ShippedPolicyJailTests {
    static let policies = TestSupport.repositoryRoot + "/policies"
    static let samples = TestSupport.repositoryRoot + "/sample"

    /// (policy, sample file, the line the sample prints).
    static let cases: [(String, String, String)] = [
        ("default", "default.sh", "hello from default"),
        ("sh", "sh.sh", "hello from sh"),
        ("python", "python.py", "hello from python"),
        ("node", "node.js", "hello from node"),
        ("c", "c.c", "hello from c"),
        // The prototype's task, unchanged.
        ("node", "task.js", "3"),
    ]

    static func run(policy name: String, sample: String) async throws -> AttemptReport {
        let loaded = try PolicyLoader.load(name: name, directory: policies)
        let entry = try #require(loaded.policy.run.entry, "policy \(name) has no entry file")
        let contents = try IsolationTests.readFile(samples + "/" + sample)
        let request = JailRequest(
            policy: loaded.policy, policyDigest: loaded.digest,
            files: [TaskFile(path: entry, contents: Array(contents.utf8))])
        return try await TestSupport.supervisor().run(request)
    }

    @Test(arguments: cases)
    func sampleRunsUnderItsPolicy(policy: String, sample: String, expected: String) async throws {
        let report = try await Self.run(policy: policy, sample: sample)
        let details = "\(policy)/\(sample): \(report.outcome) code=\(report.exitCode.map(String.init) ?? "-") "
            + "signal=\(report.signalName ?? "-") syscall=\(report.seccompSyscall ?? "-") setup=\(report.setup?.description ?? "-") "
            + "stdout=\(report.stdoutText) stderr=\(report.stderrText)"
        #expect(report.outcome == .exited, "\(details)")
        #expect(report.exitCode == 0, "\(details)")
        #expect(report.stdoutText.split(separator: "\n").map(String.init).contains(expected), "\(details)")
        #expect(report.policyName == policy)
    }

    /// Programs that use what real tasks use (threads, child processes, pipes, /tmp, timers,
    /// the math library): the catalog's `@default` must carry every syscall they need.
    static let workloads: [(String, String, [String])] = [
        ("node", """
            const { Worker } = require('worker_threads');
            const fs = require('fs');
            fs.writeFileSync('/tmp/x', 'tmp ok');
            const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
            w.on('message', (m) => {
              console.log('worker ' + m);
              console.log(fs.readFileSync('/tmp/x', 'utf8'));
              require('child_process').exec('echo child', (e, out) => console.log(e ? 'error ' + e : out.trim()));
            });
            setTimeout(() => console.log('timer'), 20);
            """, ["worker 42", "tmp ok", "child", "timer"]),
        ("python", """
            import threading, subprocess, tempfile, multiprocessing, socket
            t = threading.Thread(target=lambda: print("thread", flush=True)); t.start(); t.join()
            print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
            with tempfile.NamedTemporaryFile() as f: print("tmp", f.name.startswith("/tmp/"))
            with multiprocessing.Pool(2) as pool: print("pool", pool.map(abs, [-1, -2]))
            a, b = socket.socketpair(); a.send(b"pair"); print(b.recv(4).decode())
            """, ["thread", "child", "tmp True", "pool [1, 2]", "pair"]),
        ("c", """
            #include <math.h>
            #include <pthread.h>
            #include <stdio.h>
            static void *work(void *arg) { return arg; }
            int main(int argc, char **argv) {
                (void)argv;
                pthread_t t;
                if (pthread_create(&t, NULL, work, NULL) != 0) return 1;
                pthread_join(t, NULL);
                printf("%.1f\\n", sqrt(15.0 + argc));
                return 0;
            }
            """, ["4.0"]),
    ]

    @Test(arguments: workloads)
    func realWorkloadRunsUnderItsPolicy(policy name: String, program: String, expected: [String]) async throws {
        let loaded = try PolicyLoader.load(name: name, directory: Self.policies)
        var policy = loaded.policy
        if name == "c" {
            // Link the math library for real (argc keeps sqrt from being folded away).
            policy.run.command = policy.run.command.map { $0.replacing("{entry}", with: "{entry} -lm") }
        }
        let request = JailRequest(
            policy: policy, policyDigest: loaded.digest,
            files: [TaskFile(path: try #require(policy.run.entry), contents: Array(program.utf8))])
        let report = try await TestSupport.supervisor().run(request)
        let lines = report.stdoutText.split(separator: "\n").map(String.init)
        #expect(report.outcome == .exited && report.exitCode == 0,
                "\(name): \(report.outcome) \(report.seccompSyscall ?? "") \(report.stdoutText) \(report.stderrText)")
        #expect(Set(lines) == Set(expected), "\(name): \(lines) \(report.stderrText)")
    }

    @Test func everyShippedPolicyExceptBaseHasASample() throws {
        guard let dir = opendir(Self.policies) else { throw IsolationTests.Errno() }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if file.hasSuffix(".toml") { names.append(String(file.dropLast(5))) }
        }
        // `egress` runs its sample in EgressJailTests, which gives jails a network.
        let covered = Set(Self.cases.map(\.0)).union(["egress"])
        #expect(Set(names).subtracting(["base"]) == covered, "shipped: \(names.sorted())")
    }
}
