import EdgyJail
import EdgyLearn
import EdgyPolicy
import EdgySyscallArguments
import EdgyTestSupport
import Foundation
import Testing

/// The parts of learning that need no jail: rendering a policy over its parent, merging runs,
/// and the decoders of what is read from a workload.
struct ProposalTests {
    static let policies = TestSupport.repositoryRoot + "/policies"

    /// Every shipped policy written as "what differs from base" loads back to the same policy.
    @Test(arguments: ["default", "python", "node", "sh", "c", "egress"])
    func aPolicyRenderedOverItsParentLoadsBackTheSame(name: String) throws {
        let loaded = try PolicyLoader.load(name: name, directory: Self.policies)
        let base = try PolicyLoader.load(name: "base", directory: Self.policies)
        let text = try #require(loaded.policy.renderTOML(over: base.policy, parentName: "base"))
        #expect(text.hasPrefix("extends = \"base\"\n"))
        let again = try PolicyLoader.parse(text, name: name, file: "\(name).toml", directory: Self.policies)
        #expect(again.digest == loaded.digest, "\(text)")
        #expect(again.policy.mounts == loaded.policy.mounts)
    }

    @Test func aTableTheParentHasAndTheChildDropsCannotBeWrittenOverIt() throws {
        let base = try PolicyLoader.load(name: "base", directory: Self.policies).policy
        var child = base
        child.mounts = []
        #expect(child.renderTOML(over: base, parentName: "base") == nil, "no [[mounts]] block would inherit base's")
    }

    @Test func mergingRunsAddsCountsAndKeepsTheFirstUse() {
        var first = LearnedUse()
        first.syscalls["read"] = LearnedUse.Count(count: 3, firstMs: 2, firstRun: 1)
        first.files["/work/a"] = { var use = LearnedUse.FileUse(); use.read = 1; return use }()
        var second = LearnedUse()
        second.syscalls["read"] = LearnedUse.Count(count: 2, firstMs: 1, firstRun: 1)
        second.syscalls["getsid"] = LearnedUse.Count(count: 1, firstMs: 9, firstRun: 1)
        second.files["/work/a"] = { var use = LearnedUse.FileUse(); use.write = 2; return use }()
        second.refused["ptrace"] = LearnedUse.Refusal(count: LearnedUse.Count(count: 1, firstMs: 4, firstRun: 1), reason: "on the deny list", errno: "EPERM")
        first.merge(second)
        #expect(first.runs == 2)
        #expect(first.syscalls["read"] == LearnedUse.Count(count: 5, firstMs: 2, firstRun: 1))
        #expect(first.syscalls["getsid"] == LearnedUse.Count(count: 1, firstMs: 9, firstRun: 2))
        #expect(first.files["/work/a"]?.read == 1 && first.files["/work/a"]?.write == 2)
        #expect(first.refused["ptrace"]?.count.firstRun == 2)
    }

    @Test func socketAddressesAreDescribed() {
        #expect(SyscallArguments.describe(sockaddr: [2, 0, 0x01, 0xbb, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]) == "inet 10.0.0.1:443")
        #expect(SyscallArguments.describe(sockaddr: [10, 0, 0, 80, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 15) + [1, 0, 0, 0, 0]) == "inet6 [::1]:80")
        #expect(SyscallArguments.describe(sockaddr: [1, 0] + Array("/run/x".utf8) + [0]) == "unix /run/x")
        #expect(SyscallArguments.describe(sockaddr: [1, 0, 0] + Array("bus".utf8)) == "unix @bus")
        #expect(SyscallArguments.describe(sockaddr: [2, 0, 1]) == nil, "a truncated address")
        #expect(SyscallArguments.describe(sockaddr: [16, 0, 0, 0]) == nil, "netlink has no destination to show")
    }

    @Test func theELFInterpreterOfAHostBinaryIsRead() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "/bin/sh")))
        let interpreter = SyscallArguments.elfInterpreter { offset, count in
            guard offset <= UInt64(bytes.count), count <= bytes.count - Int(offset) else { return nil }
            return Array(bytes[Int(offset)..<Int(offset) + count])
        }
        #expect(interpreter?.hasPrefix("/lib") == true, "\(interpreter ?? "nil")")
        #expect(SyscallArguments.elfInterpreter { _, count in Array(Array("#!/bin/sh\n".utf8).prefix(count)) } == nil)
    }

    @Test func pathsAreNormalizedAgainstTheirBase() {
        #expect(SyscallArguments.normalized("a/../../b/./c//d", base: "/work") == "/b/c/d")
        #expect(SyscallArguments.normalized("/usr/lib/../bin/") == "/usr/bin")
        #expect(SyscallArguments.normalized("../../..", base: "/") == "/")
        #expect(SyscallArguments.normalized("main.py", base: "/work") == "/work/main.py")
    }
}
