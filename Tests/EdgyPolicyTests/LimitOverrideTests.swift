import EdgyPolicy
import Foundation
import Testing

@Suite struct LimitOverrideTests {
    let limits = Policy.Limits(wallTimeS: 10, cpuTimeS: 5, memoryMib: 256, pids: 64, outputOverflow: .truncate)

    @Test func tightens() throws {
        let out = try limits.applying(LimitOverrides(wallTimeS: 2, memoryMib: 128, outputOverflow: .kill))
        #expect(out.wallTimeS == 2 && out.memoryMib == 128 && out.outputOverflow == .kill)
        #expect(out.pids == 64 && out.cpuTimeS == 5)
        #expect(try limits.applying(LimitOverrides()) == limits)
        #expect(try limits.applying(LimitOverrides(memoryMib: 256)) == limits, "equal is not looser")
    }

    struct Loosen: Sendable, CustomTestStringConvertible {
        var overrides: LimitOverrides
        var key: String
        var maximum: String
        var testDescription: String { key }
    }

    @Test(arguments: [
        Loosen(overrides: LimitOverrides(memoryMib: 512), key: "memory_mib", maximum: "256"),
        Loosen(overrides: LimitOverrides(wallTimeS: 11), key: "wall_time_s", maximum: "10.0"),
        Loosen(overrides: LimitOverrides(pids: 65), key: "pids", maximum: "64"),
        Loosen(overrides: LimitOverrides(stderrKib: 4096), key: "stderr_kib", maximum: "1024"),
        Loosen(overrides: LimitOverrides(pids: 0), key: "pids", maximum: "> 0"),
    ])
    func refusesLoosening(_ c: Loosen) {
        #expect(throws: PolicyOverrideError.self) { try limits.applying(c.overrides) }
        do {
            _ = try limits.applying(c.overrides)
        } catch {
            #expect(error.key == c.key)
            #expect(error.maximum == c.maximum)
            #expect(error.description.contains(c.key))
        }
    }

    @Test func killCannotBecomeTruncate() {
        let strict = Policy.Limits(outputOverflow: .kill)
        #expect(throws: PolicyOverrideError.self) { try strict.applying(LimitOverrides(outputOverflow: .truncate)) }
    }

    @Test func codesWithPolicyKeyNames() throws {
        let json = try JSONEncoder().encode(LimitOverrides(memoryMib: 64))
        #expect(String(decoding: json, as: UTF8.self) == #"{"memory_mib":64}"#)
        let back = try JSONDecoder().decode(LimitOverrides.self, from: Data(#"{"wall_time_s": 1.5}"#.utf8))
        #expect(back == LimitOverrides(wallTimeS: 1.5))
    }
}
