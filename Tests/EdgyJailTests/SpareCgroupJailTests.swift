import EdgyCgroup
import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgySystem
import EdgyTestSupport
import Glibc
import Testing

/// Real jails under a cgroup manager that keeps groups between jails, as edgyd runs one
/// (`spareGroups`): a jail is charged for its own CPU only, by the report and by the CPU limit
/// that reads its group. On v1 the next jail takes the same freezer, cpu and cpuacct groups; v2
/// keeps none, and the same jails must behave the same there.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(2)))
struct SpareCgroupJailTests {
    /// A Python loop that stops by itself at `seconds` of its own CPU.
    static func burn(_ seconds: Double) -> [String] {
        ["/usr/bin/python3", "-c", "import time\nwhile time.process_time() < \(seconds): pass\nprint('done')"]
    }

    static func subdirectories(_ dir: String) -> Set<String> {
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var names: Set<String> = []
        while let entry = readdir(handle) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.insert(name) }
        }
        return names
    }

    @Test func aJailInAKeptGroupIsChargedOnlyForItsOwnCPU() async throws {
        let host = try CgroupHost.detect()
        let parent = "edgyt-spare-jails-\(getpid())"
        var parents: [String] = []
        defer { for dir in parents { rmdir(dir) } }
        do {
            let cgroups = try CgroupManager(host: host, parentName: parent, spareGroups: 4)
            parents = cgroups.parentDirectories
            // Where kept groups show: cpuacct's hierarchy on v1; nowhere on v2.
            let keptIn = host.version == .v1 ? parents.first { $0.hasSuffix("/cpuacct/\(parent)") } : nil
            if host.version == .v1 { #expect(keptIn != nil, "\(parents)") }
            let supervisor = try JailSupervisor(cgroups: cgroups)
            func run(_ command: [String], cpuTimeS: Double) async -> AttemptReport {
                let policy = TestSupport.policy(command) { policy in
                    policy.limits.cpuTimeS = cpuTimeS
                    policy.limits.wallTimeS = 30
                }
                return await supervisor.run(JailRequest(policy: policy))
            }
            /// v1: waits up to 5 s for the finished jail's group to be kept; v2: none is.
            func keptAfterTheJail() async throws -> Set<String> {
                guard let keptIn else {
                    #expect(cgroups.spareCount == 0)
                    return []
                }
                for _ in 0..<100 where cgroups.spareCount == 0 { try await Task.sleep(for: .milliseconds(50)) }
                #expect(cgroups.spareCount > 0)
                return Self.subdirectories(keptIn)
            }

            let first = await run(Self.burn(0.6), cpuTimeS: 5)
            #expect(first.outcome == .exited && first.stdoutText == "done\n", "\(first.outcome) \(first.stderrText)")
            #expect(first.cpuUserMs + first.cpuSysMs >= 550, "\(first.cpuUserMs)+\(first.cpuSysMs) ms")
            let kept = try await keptAfterTheJail()
            if keptIn != nil { #expect(kept.count == 1 && kept.allSatisfy { $0.hasPrefix("spare-") }, "\(kept)") }

            // 0.6 s more under a 1 s limit on the group's CPU: charged with the first jail's
            // 0.6 s as well, it would end `cpuTimeout`.
            let second = await run(Self.burn(0.6), cpuTimeS: 1)
            #expect(second.outcome == .exited && second.stdoutText == "done\n", "\(second.outcome) \(second.stderrText)")
            #expect(second.cpuUserMs + second.cpuSysMs < 900, "\(second.cpuUserMs)+\(second.cpuSysMs) ms")
            #expect(try await keptAfterTheJail() == kept, "the second jail used the kept group")

            // One killed at its CPU limit is not kept.
            let spinner = await run(["/bin/sh", "-c", "while :; do :; done"], cpuTimeS: 1)
            #expect(spinner.outcome == .cpuTimeout, "\(spinner.outcome)")
            if let keptIn {
                var left = kept
                for _ in 0..<100 where !left.isEmpty {
                    try await Task.sleep(for: .milliseconds(50))
                    left = Self.subdirectories(keptIn)
                }
                #expect(left.isEmpty && cgroups.spareCount == 0, "\(left)")
            }
            supervisor.shutdown()
        }
        // Gone with the manager: no group is left under the parent.
        for dir in parents {
            #expect(Self.subdirectories(dir).isEmpty, "\(dir): \(Self.subdirectories(dir))")
        }
    }
}
