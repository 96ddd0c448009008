import EdgyRunProtocol
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// `edgy helper` and the C front end that hands it `edgy run`: real helpers on sockets of their
/// own, real jails, and clients that behave and misbehave.
@Suite(.timeLimit(.minutes(3)))
struct RunHelperTests {
    /// A helper listening on a socket in a fresh directory; stopped (SIGTERM) by `stop`.
    final class Helper {
        let directory: String
        let socket: String
        let process: BoundedProcess

        init(_ arguments: [String] = []) throws {
            directory = NSTemporaryDirectory() + "edgy-helper-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            socket = directory + "/run.sock"
            process = try BoundedProcess(
                RunCommandTests.edgy, ["helper", "--socket", socket] + arguments, directory: TestSupport.repositoryRoot)
            let deadline = ContinuousClock.now + .seconds(30)
            while !log.contains("serving edgy run") {
                guard process.isRunning, ContinuousClock.now < deadline else {
                    throw HelperDidNotStart(log: log)
                }
                usleep(10_000)
            }
        }

        struct HelperDidNotStart: Error { let log: String }

        var log: String { process.output().stderr }

        /// The environment of a client of this helper.
        var environment: [String: String] {
            ProcessInfo.processInfo.environment.merging(["EDGY_HELPER_SOCKET": socket]) { $1 }
        }

        /// `edgy ARGS…` through this helper, from `directory` (the repository root by default).
        func edgy(_ arguments: [String], from directory: String = TestSupport.repositoryRoot) throws -> RunCommandTests.Result {
            let run = try BoundedProcess.run(RunCommandTests.edgy, arguments, environment: environment, directory: directory)
            return RunCommandTests.Result(status: run.termination.status, stdout: run.stdout, stderr: run.stderr)
        }

        /// Waits until the log has `count` lines containing `text`, for up to `seconds`.
        func waitForLog(_ text: String, count: Int = 1, seconds: Int = 20) -> Bool {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while log.components(separatedBy: text).count - 1 < count {
                if ContinuousClock.now >= deadline { return false }
                usleep(10_000)
            }
            return true
        }

        func stop() {
            process.terminate(grace: .seconds(20))
            process.removeOutputFiles()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs a Python client script (`/usr/bin/python3`) with the socket path as its argument.
    static func python(_ script: String, socket: String, as user: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let python = ["/usr/bin/python3", "-c", script, socket]
        let (program, arguments) = user.map { ("/usr/bin/setpriv", ["--reuid", $0, "--regid", $0, "--clear-groups"] + python) }
            ?? (python[0], Array(python.dropFirst()))
        let run = try BoundedProcess.run(program, arguments, timeout: .seconds(30))
        return (run.termination.status, run.stdout, run.stderr)
    }

    @Test(.tags(.root), .requiresRoot) func aRunThroughTheHelperMatchesTheSameRunAlone() throws {
        let helper = try Helper()
        defer { helper.stop() }
        let command = ["run", "--policy", "policies/default.toml", "--", "/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"]
        let alone = try RunCommandTests.edgy(command)
        let first = try helper.edgy(command)
        let second = try helper.edgy(command)
        #expect(helper.waitForLog(": exited 3 after", count: 2), "\(helper.log)")
        for served in [first, second] {
            #expect(served.status == 3 && alone.status == 3, "\(served.stderr)")
            #expect(served.stdout == "hello\n" && served.stdout == alone.stdout)
            #expect(served.stderr.hasPrefix("oops\nedgy: exited 3 after"), "\(served.stderr)")
        }
        // The report is the same attempt's: the policy's digest and outcome.
        let json = try helper.edgy(["run", "--json", "--policy", "policies/default.toml", "--", "/bin/true"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(json.status == 0 && object["outcome"] as? String == "exited" && (object["policy_digest"] as? String)?.count == 64)
        #expect(helper.waitForLog(": exited 0 after"), "\(helper.log)")
    }

    /// Relative paths (policy, files, stdin) are the client's, not the helper's.
    @Test(.tags(.root), .requiresRoot) func pathsAreReadFromTheClientsDirectory() throws {
        let helper = try Helper()
        defer { helper.stop() }
        let client = helper.directory + "/client"
        try FileManager.default.createDirectory(atPath: client, withIntermediateDirectories: true)
        try "from stdin\n".write(toFile: client + "/in.txt", atomically: true, encoding: .utf8)
        try "print('from a file')\n".write(toFile: client + "/main.py", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies/python.toml", toPath: client + "/python.toml")
        try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies/base.toml", toPath: client + "/base.toml")

        let python = try helper.edgy(["run", "--policy", "python.toml", "--file", "main.py=main.py"], from: client)
        #expect(python.status == 0 && python.stdout == "from a file\n", "\(python.stderr)")
        let stdin = try helper.edgy(["run", "--policy", "python.toml", "--stdin", "in.txt", "--", "/bin/cat"], from: client)
        #expect(stdin.status == 0 && stdin.stdout == "from stdin\n", "\(stdin.stderr)")
        let missing = try helper.edgy(["run", "--policy", "python.toml", "--stdin", "absent.txt", "--", "/bin/cat"], from: client)
        #expect(missing.status == 125 && missing.stderr.contains("edgy: --stdin: cannot read absent.txt"), "\(missing.stderr)")
        #expect(helper.waitForLog(": exited 0 after", count: 2), "\(helper.log)")
    }

    /// Help and mistakes are the CLI's: the helper declines them and the front end runs edgy-cli.
    @Test(.tags(.root), .requiresRoot) func helpAndMistakesAreTheCLIs() throws {
        let helper = try Helper()
        defer { helper.stop() }
        let help = try helper.edgy(["run", "--help"])
        #expect(help.status == 0 && help.stdout.contains("Run one command in a jail"), "\(help.stderr)")
        let wrong = try helper.edgy(["run", "--no-such-option", "--", "/bin/true"])
        let wrongAlone = try RunCommandTests.edgy(["run", "--no-such-option", "--", "/bin/true"])
        #expect(wrong.status == wrongAlone.status && wrong.status != 0)
        #expect(wrong.stderr == wrongAlone.stderr && wrong.stderr.contains("no-such-option"), "\(wrong.stderr)")
        #expect(!helper.log.contains("exited"), "\(helper.log)")
    }

    /// A client that goes away (Ctrl-C, a killed script) takes its jail with it.
    @Test(.tags(.root), .requiresRoot) func aClientThatGoesAwayCancelsItsJail() throws {
        let helper = try Helper()
        defer { helper.stop() }
        let marker = "61.\(Int.random(in: 100_000...999_999))"
        let client = try BoundedProcess(
            RunCommandTests.edgy, ["run", "--policy", "policies/default.toml", "--", "/bin/sleep", marker],
            environment: helper.environment, directory: TestSupport.repositoryRoot)
        defer { client.removeOutputFiles() }
        let deadline = ContinuousClock.now + .seconds(20)
        while Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty, ContinuousClock.now < deadline { usleep(10_000) }
        try #require(!Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty, "the jail never started: \(helper.log)")
        client.kill9()
        #expect(helper.waitForLog(": cancelled after"), "\(helper.log)")
        let gone = ContinuousClock.now + .seconds(10)
        while !Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty, ContinuousClock.now < gone { usleep(10_000) }
        #expect(Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty)
    }

    /// Past `--max-runs` runs at once, the helper declines and the front end runs the command alone.
    /// A helper stopped with runs in flight cancels them and leaves no process behind.
    @Test(.tags(.root), .requiresRoot) func runsPastTheLimitAreDeclinedAndAStopEndsTheRest() throws {
        let helper = try Helper(["--max-runs", "1"])
        defer { helper.stop() }
        let marker = "62.\(Int.random(in: 100_000...999_999))"
        let long = try BoundedProcess(
            RunCommandTests.edgy, ["run", "--policy", "policies/default.toml", "--", "/bin/sleep", marker],
            environment: helper.environment, directory: TestSupport.repositoryRoot)
        defer {
            long.kill9()
            long.removeOutputFiles()
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty, ContinuousClock.now < deadline { usleep(10_000) }
        try #require(!Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty, "the first run never started: \(helper.log)")
        let second = try helper.edgy(["run", "--policy", "policies/default.toml", "--", "/bin/sh", "-c", "echo alone"])
        #expect(second.status == 0 && second.stdout == "alone\n", "\(second.stderr)")
        #expect(!helper.log.contains("exited 0"), "the helper ran the second run: \(helper.log)")

        // SIGTERM with the first run in flight: it is cancelled, its client told, its jail gone.
        let stopped = helper.process.terminate(grace: .seconds(20))
        #expect(stopped?.status == 0, "\(helper.log)")
        #expect(helper.log.contains(": cancelled after"), "\(helper.log)")
        let ended = try long.wait(timeout: .seconds(20))
        #expect(ended.status == 137, "\(long.output().stderr)")
        #expect(Self.processes(withArguments: ["/bin/sleep", marker]).isEmpty)
        #expect(access(helper.socket, F_OK) != 0)
    }

    /// Malformed requests and other users get no run and no answer, and the helper goes on serving.
    @Test(.tags(.root), .requiresRoot) func badClientsGetNothingAndTheHelperGoesOn() throws {
        let helper = try Helper()
        defer { helper.stop() }
        let send = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(sys.argv[1])
            # A refused peer may be hung up on before it sends: no answer either way.
            try:
                socket.send_fds(s, [bytes.fromhex(sys.argv[2])], [0, 1, 2][:int(sys.argv[3])])
                print(repr(s.recv(16)))
            except ConnectionError:
                print(repr(b''))
            """
        func client(_ request: [UInt8], fds: Int = 3) throws -> String {
            let hex = request.map { String(format: "%02x", $0) }.joined()
            let script = send.replacingOccurrences(of: "sys.argv[2]", with: "'\(hex)'").replacingOccurrences(of: "sys.argv[3]", with: "'\(fds)'")
            let run = try Self.python(script, socket: helper.socket)
            #expect(run.status == 0, "\(run.stderr)")
            return run.stdout
        }
        #expect(try client(Array("NOTMAGIC/bin/true\0".utf8)) == "b''\n")
        #expect(try client(Array("EDGYRUN1--\0/bin/true".utf8)) == "b''\n")
        #expect(try client(RunHelperRequest.encode(["--", "/bin/true"])!, fds: 2) == "b''\n")
        #expect(helper.waitForLog("malformed request", count: 3), "\(helper.log)")
        #expect(helper.log.contains("no EDGYRUN1 magic") && helper.log.contains("2 fds attached, not 3"), "\(helper.log)")

        // Another user, even where the socket's mode lets it connect, is refused by its uid.
        #expect(chmod(helper.socket, 0o666) == 0)
        let other = try Self.python(
            send.replacingOccurrences(of: "sys.argv[2]", with: "'\(RunHelperRequest.encode(["--", "/bin/true"])!.map { String(format: "%02x", $0) }.joined())'")
                .replacingOccurrences(of: "sys.argv[3]", with: "'3'"),
            socket: helper.socket, as: "65534")
        #expect(other.status == 0 && other.stdout == "b''\n", "\(other.stderr)")
        #expect(helper.waitForLog("runs as uid 65534"), "\(helper.log)")

        let after = try helper.edgy(["run", "--policy", "policies/default.toml", "--", "/bin/sh", "-c", "echo still"])
        #expect(after.status == 0 && after.stdout == "still\n", "\(after.stderr)")
        #expect(helper.waitForLog(": exited 0 after"), "\(helper.log)")
        // That run is the only one the helper made.
        #expect(helper.log.components(separatedBy: ": exited").count == 2, "\(helper.log)")
    }

    /// A socket nobody listens on (a killed helper's) is no helper: `edgy run` runs alone, and a new
    /// helper takes the path over. A live helper's socket is not taken over.
    @Test(.tags(.root), .requiresRoot) func staleAndLiveSockets() throws {
        let directory = NSTemporaryDirectory() + "edgy-stale-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let stale = directory + "/run.sock"
        let made = try Self.python(
            "import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\ns.bind(sys.argv[1])\ns.close()", socket: stale)
        #expect(made.status == 0, "\(made.stderr)")
        let environment = ProcessInfo.processInfo.environment.merging(["EDGY_HELPER_SOCKET": stale]) { $1 }
        let alone = try BoundedProcess.run(
            RunCommandTests.edgy, ["run", "--policy", "policies/default.toml", "--", "/bin/sh", "-c", "echo alone"],
            environment: environment, directory: TestSupport.repositoryRoot)
        #expect(alone.termination.status == 0 && alone.stdout == "alone\n", "\(alone.stderr)")

        let helper = try BoundedProcess(
            RunCommandTests.edgy, ["helper", "--socket", stale, "--idle-exit", "1"], directory: TestSupport.repositoryRoot)
        defer { helper.removeOutputFiles() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !helper.output().stderr.contains("serving edgy run"), helper.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        #expect(helper.output().stderr.contains("serving edgy run on \(stale)"), "\(helper.output().stderr)")

        let second = try BoundedProcess.run(
            RunCommandTests.edgy, ["helper", "--socket", stale], directory: TestSupport.repositoryRoot, timeout: .seconds(30))
        #expect(second.termination.status == 125 && second.stderr.contains("another helper already serves \(stale)"), "\(second.stderr)")

        // --idle-exit: with nothing to run, the first helper leaves after a second and takes its socket.
        let ended = try helper.wait(timeout: .seconds(20))
        #expect(ended.status == 0)
        #expect(access(stale, F_OK) != 0)
    }

    /// The pids whose command line is exactly `arguments`.
    static func processes(withArguments arguments: [String]) -> [Int32] {
        let wanted = Array(arguments.joined(separator: "\0").utf8) + [0]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map { Array($0) == wanted } ?? false
        }
    }
}

/// The request and reply formats, both ways.
@Suite struct RunHelperMessageTests {
    @Test func requestsRoundTripAndBadOnesAreNamed() throws {
        let arguments = ["--policy", "p.toml", "--", "/bin/sh", "-c", "echo é", ""]
        let bytes = try #require(RunHelperRequest.encode(arguments))
        #expect(try RunHelperRequest.decode(bytes) == arguments)
        #expect(try RunHelperRequest.decode(RunHelperRequest.magic) == [])
        #expect(throws: RunHelperRequest.Malformed(description: "no EDGYRUN1 magic")) { try RunHelperRequest.decode(Array("EDGYRUN2".utf8)) }
        #expect(throws: RunHelperRequest.Malformed(description: "an argument without its terminating NUL")) {
            try RunHelperRequest.decode(RunHelperRequest.magic + Array("abc".utf8))
        }
        #expect(RunHelperRequest.encode([String(repeating: "x", count: RunHelperRequest.maxBytes)]) == nil)
        #expect(throws: RunHelperRequest.Malformed.self) { try RunHelperRequest.decode([UInt8](repeating: 0, count: RunHelperRequest.maxBytes + 1)) }
        let tooMany = RunHelperRequest.magic + [UInt8](repeating: 0, count: RunHelperRequest.maxArguments + 1)
        #expect(throws: RunHelperRequest.Malformed(description: "more than 4096 arguments")) { try RunHelperRequest.decode(tooMany) }
        // Invalid UTF-8 is repaired, as CommandLine.arguments repairs it.
        #expect(try RunHelperRequest.decode(RunHelperRequest.magic + [0xff, 0]) == ["\u{FFFD}"])
    }

    @Test func repliesRoundTrip() {
        for reply in [RunHelperReply.declined, .exited(0), .exited(3), .exited(125), .exited(-1), .exited(Int32.max)] {
            #expect(RunHelperReply(reply.bytes) == reply)
        }
        #expect(RunHelperReply.exited(258).bytes == [UInt8(ascii: "S"), 2, 1, 0, 0])
        #expect(RunHelperReply([UInt8(ascii: "S"), 1]) == nil)
        #expect(RunHelperReply([]) == nil)
    }
}
