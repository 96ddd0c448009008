import EdgyPolicy
@testable import EdgySeccomp
import Testing

@Suite struct CompilerTests {
    @Test func defaultPolicyCompiles() throws {
        let program = try SeccompCompiler.compile(Policy.Seccomp())
        #expect(program.instructionCount > 20)
        #expect(program.instructionCount < 4096)  // BPF_MAXINSNS
        #expect(program.bytes.count == program.instructionCount * 8)
    }

    @Test func everyActionCompiles() throws {
        for action: Policy.SeccompAction in [.killProcess, .log, .errno(1, "EPERM"), .errno(38, "ENOSYS")] {
            _ = try SeccompCompiler.compile(Policy.Seccomp(defaultAction: action))
        }
        _ = try SeccompCompiler.compile(Policy.Seccomp(allowNamespaceClone: true))
        _ = try SeccompCompiler.compile(Policy.Seccomp(ioctlDeny: []))
    }

    @Test func compilationIsDeterministic() throws {
        #expect(try SeccompCompiler.compile(Policy.Seccomp()) == SeccompCompiler.compile(Policy.Seccomp()))
    }

    @Test(arguments: [
        (Policy.Seccomp(allow: ["@default", "frobnicate"]), SeccompError.unknownSyscall("frobnicate")),
        (Policy.Seccomp(allow: ["@nope"]), SeccompError.unknownSyscall("@nope")),
        (Policy.Seccomp(deny: ["frobnicate"]), SeccompError.unknownSyscall("frobnicate")),
        (Policy.Seccomp(allow: ["statmount"]), SeccompError.unsupportedSyscall("statmount")),
        (Policy.Seccomp(socketFamilies: ["ax25"]), SeccompError.unknownSocketFamily("ax25")),
        (Policy.Seccomp(ioctlDeny: ["TIOCFROB"]), SeccompError.unknownIoctl("TIOCFROB")),
        (Policy.Seccomp(defaultAction: .errno(0, "0")), SeccompError.invalidErrno(0)),
    ])
    func badTablesAreRefusedByName(seccomp: Policy.Seccomp, expected: SeccompError) {
        #expect(throws: expected) { try SeccompCompiler.compile(seccomp) }
    }

    /// Only the constant `kill_process` returns change, to user notifications; every other
    /// instruction (the arch check's jumps, allow and errno returns) stays as compiled.
    @Test(arguments: [Policy.Seccomp(), Policy.Seccomp(defaultAction: .errno(1, "EPERM")), Policy.Seccomp(deny: ["getpid"])])
    func killsBecomeNotificationsAndNothingElseChanges(seccomp: Policy.Seccomp) throws {
        let program = try SeccompCompiler.compile(seccomp)
        let notifying = program.killsAsNotifications
        func instructions(_ p: SeccompProgram) -> [(code: UInt16, k: UInt32)] {
            stride(from: 0, to: p.bytes.count, by: 8).map { o in
                (UInt16(p.bytes[o]) | UInt16(p.bytes[o + 1]) << 8,
                 (0..<4).reduce(UInt32(0)) { $0 | UInt32(p.bytes[o + 4 + $1]) << (8 * $1) })
            }
        }
        let before = instructions(program), after = instructions(notifying)
        #expect(before.count == after.count)
        var changed = 0
        for (old, new) in zip(before, after) where old.k != new.k || old.code != new.code {
            #expect(old.code == 0x06 && old.k == 0x8000_0000 && new.code == 0x06 && new.k == 0x7fc0_0000)
            changed += 1
        }
        #expect(changed == before.filter { $0.code == 0x06 && $0.k == 0x8000_0000 }.count)
        #expect(changed >= 1)  // the bad-arch kill at least
        #expect(zip(program.bytes, notifying.bytes).enumerated().allSatisfy { i, pair in pair.0 == pair.1 || i % 8 >= 4 })
    }

    @Test(arguments: [
        (Policy.Seccomp(deny: ["write"]), "write"),
        (Policy.Seccomp(allow: ["read", "write"]), "execve"),
        (Policy.Seccomp(defaultAction: .errno(1, "EPERM"), deny: ["read"]), "read"),
    ])
    func theJailsOwnStartMustBeAllowed(seccomp: Policy.Seccomp, missing: String) {
        #expect(throws: SeccompError.jailStartDenied(missing)) { try SeccompCompiler.checkJailStart(seccomp) }
    }

    @Test func aLoggingFilterNeedsNoStartSyscalls() throws {
        try SeccompCompiler.checkJailStart(Policy.Seccomp(defaultAction: .log, allow: []))
        try SeccompCompiler.checkJailStart(Policy.Seccomp())
    }

    @Test func newerSyscallsMayBeDenied() throws {
        _ = try SeccompCompiler.compile(Policy.Seccomp(deny: ["@dangerous", "statmount"]))
    }

    @Test func ioctlBlocksCoverEverythingButTheDeniedRequests() {
        let denied: [UInt32] = [0x5412, 0x541C]
        let blocks = SeccompCompiler.allowedIoctlBlocks(excluding: denied)
        #expect(blocks.count == 34)
        func allowed(_ request: UInt32) -> Int { blocks.filter { request & $0.mask == $0.value }.count }
        for request: UInt32 in [0, 1, 0x5411, 0x5413, 0x541B, 0x541D, 0x5401, 0x8004_5430, 0xffff_ffff, 0x4000_5412, 0x5412 | 0x1_0000] {
            #expect(allowed(request) == 1, "request \(request) must be allowed by exactly one block")
        }
        for request in denied { #expect(allowed(request) == 0) }
        #expect(SeccompCompiler.allowedIoctlBlocks(excluding: []).count == 1)
    }

    @Test func cacheReturnsTheSameProgram() throws {
        let cache = SeccompCache()
        let seccomp = Policy.Seccomp(deny: ["ptrace"])
        let first = try cache.program(for: seccomp)
        let second = try cache.program(for: seccomp)
        #expect(first == second)
        #expect(cache.count == 1)
        _ = try cache.program(for: Policy.Seccomp())
        #expect(cache.count == 2)
        #expect(throws: SeccompError.unknownSyscall("frobnicate")) { try cache.program(for: Policy.Seccomp(allow: ["frobnicate"])) }
        #expect(cache.count == 2)
        // A table that compiles but denies the jail's own start is refused, every time.
        for _ in 0..<2 {
            #expect(throws: SeccompError.jailStartDenied("write")) { try cache.program(for: Policy.Seccomp(deny: ["write"])) }
        }
        #expect(cache.count == 2)
        #expect(try SeccompCompiler.cached(seccomp) == first)
    }
}

@Suite struct ExplainerTests {
    static let policy = Policy.Seccomp(deny: ["ptrace", "@ipc-lite"])

    @Test(arguments: [
        ("openat", "openat: allowed by `@default` (via `@file-system`)"),
        ("getrandom", "getrandom: allowed by `@default`"),
        ("ptrace", "ptrace: denied: listed in deny → kill_process"),
        ("futex", "futex: denied: listed in deny by `@ipc-lite` → kill_process"),
        ("bpf", "bpf: denied: not in the allow list → kill_process"),
        ("frobnicate", "frobnicate: unknown syscall"),
    ])
    func explains(syscall: String, expected: String) {
        #expect(SeccompExplainer.explain(syscall, in: Self.policy).description == expected)
    }

    @Test func conditionalSyscalls() {
        let seccomp = Policy.Seccomp()
        for name in ["clone", "clone3", "socket", "ioctl"] {
            #expect(SeccompExplainer.explain(name, in: seccomp).verdict == .conditional, "\(name)")
        }
        #expect(SeccompExplainer.explain("clone", in: seccomp).reason.hasPrefix("clone allowed without namespace flags"))
        #expect(SeccompExplainer.explain("socket", in: seccomp).reason.contains("unix, inet, inet6"))
        #expect(SeccompExplainer.explain("ioctl", in: seccomp).reason.contains("TIOCSTI, TIOCLINUX"))
        #expect(SeccompExplainer.explain("clone", in: Policy.Seccomp(allowNamespaceClone: true)).verdict == .allowed)
        #expect(SeccompExplainer.explain("ioctl", in: Policy.Seccomp(ioctlDeny: [])).verdict == .allowed)
    }

    @Test func directAllowAndErrnoDefault() {
        let seccomp = Policy.Seccomp(defaultAction: .errno(1, "EPERM"), allow: ["read"])
        #expect(SeccompExplainer.explain("read", in: seccomp).description == "read: allowed: listed in allow")
        #expect(SeccompExplainer.explain("write", in: seccomp).verdict == .denied(.errno(1, "EPERM")))
        #expect(SeccompExplainer.explain("write", in: seccomp).description == "write: denied: not in the allow list → errno:EPERM")
    }
}
