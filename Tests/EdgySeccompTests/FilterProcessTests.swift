import EdgyPolicy
import EdgySeccomp
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// Real processes under the compiled filter, without the jail: `edgy-probe filter FILE -- ACTION`
/// loads the program (after PR_SET_NO_NEW_PRIVS) and then tries ACTION.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct FilterProcessTests {
    enum Result: Equatable {
        case exited(Int32, String)
        case signaled(Int32)
    }

    /// The probe is built next to the test bundle (`.build/<triple>/debug/edgy-probe`).
    static let probe: URL? = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("edgy-probe")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }()

    static func run(_ seccomp: Policy.Seccomp, _ action: [String]) throws -> Result {
        let probe = try #require(Self.probe, "build edgy-probe first (swift build --product edgy-probe)")
        let program = try SeccompCompiler.compile(seccomp)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-filter-\(UUID().uuidString).bpf")
        try Data(program.bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let run = try BoundedProcess.run(probe.path, ["filter", file.path, "--"] + action, timeout: .seconds(30))
        if let signal = run.termination.signal { return .signaled(signal) }
        return .exited(run.termination.code ?? -1, run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static let kill = Policy.Seccomp()

    @Test(arguments: [
        ["syscall", "ptrace"], ["syscall", "bpf"], ["syscall", "mount"], ["syscall", "unshare"],
        ["clone-ns", "CLONE_NEWUSER"], ["clone-ns", "CLONE_NEWNET"], ["clone-ns", "CLONE_NEWNS"],
        ["ioctl-tiocsti"], ["ioctl", "0x5412"], ["ioctl", "0x541C"], ["ioctl", "0x100005412"], ["ioctl", "0xffffffff00005412"],
        ["socket", "packet"], ["socket", "netlink"], ["x32"], ["i386"],
    ])
    func killed(action: [String]) throws {
        #expect(try Self.run(Self.kill, action) == .signaled(SIGSYS))
    }

    @Test(arguments: [
        (["fork-thread"], "ok"), (["socket", "inet"], "ok"), (["socket", "unix"], "ok"),
        (["clone-ns", "none"], "ok"), (["caps"], nil), (["syscall", "getpid"], "ok"),
    ])
    func allowed(action: [String], output: String?) throws {
        let result = try Self.run(Self.kill, action)
        guard case .exited(0, let text) = result else {
            Issue.record("\(action) gave \(result)")
            return
        }
        if let output { #expect(text == output) }
        if action == ["caps"] { #expect(text.contains("Seccomp:\t2")) }
    }

    /// Other requests reach the kernel (stdin is /dev/null, so a terminal request fails ENOTTY).
    @Test(arguments: ["0x5401", "0x5411", "0x5413", "0x541B", "0x541D", "0x80045430"])
    func otherIoctlsPass(request: String) throws {
        #expect(try Self.run(Self.kill, ["ioctl", request]) == .exited(1, "denied errno=ENOTTY"))
    }

    @Test func clone3FailsWithENOSYS() throws {
        #expect(try Self.run(Self.kill, ["clone3-ns"]) == .exited(1, "denied errno=ENOSYS"))
    }

    @Test func namespaceCloneCanBeAllowed() throws {
        let seccomp = Policy.Seccomp(allowNamespaceClone: true)
        #expect(try Self.run(seccomp, ["clone-ns", "CLONE_NEWUSER"]) == .exited(0, "ok"))
    }

    @Test func errnoDefaultAction() throws {
        let seccomp = Policy.Seccomp(defaultAction: .errno(EPERM, "EPERM"))
        #expect(try Self.run(seccomp, ["syscall", "bpf"]) == .exited(1, "denied errno=EPERM"))
        // Other ABIs are killed whatever the default action is.
        #expect(try Self.run(seccomp, ["x32"]) == .signaled(SIGSYS))
        #expect(try Self.run(seccomp, ["i386"]) == .signaled(SIGSYS))
    }

    @Test func deniedWhenListedInDeny() throws {
        let seccomp = Policy.Seccomp(defaultAction: .errno(EPERM, "EPERM"), deny: ["getpid"])
        #expect(try Self.run(seccomp, ["syscall", "getpid"]) == .exited(1, "denied errno=EPERM"))
    }
}
