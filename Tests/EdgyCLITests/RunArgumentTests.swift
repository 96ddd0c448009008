import ArgumentParser
import Foundation
import Testing

@testable import EdgyCLI

/// `edgy run`'s hand-written fast parser against ArgumentParser: for every argument list it
/// accepts, ArgumentParser reads the same invocation; what it declines, ArgumentParser handles.
struct RunArgumentTests {
    static let accepted: [[String]] = [
        [],
        ["--", "/bin/true"],
        ["--policy", "policies/python.toml", "--", "/usr/bin/python3", "-c", "print(1)"],
        ["--policy=policies/c.toml", "--json", "--no-cgroup"],
        ["--file", "main.py=/tmp/a.py", "--file=data=/tmp/b", "--stdin", "/tmp/in", "--", "cat", "--policy", "x"],
        ["--json", "--", "--", "-x"],
        ["--stdin=in.txt", "--file", "a=b=c"],
    ]

    static let declined: [[String]] = [
        ["--help"], ["-h"], ["--policy"], ["--policy", "--json"], ["--policy="], ["--json=true"], ["--json", "--json"],
        ["--policy", "a", "--policy", "b"], ["--file", "nodest"], ["/bin/true"], ["--unknown"], ["--stdin", "a", "--stdin", "b"],
    ]

    @Test(arguments: accepted) func acceptedListsParseAsArgumentParserParsesThem(arguments: [String]) throws {
        let fast = try #require(RunInvocation.fastParse(arguments[...]))
        let parsed = try RunCommand.parse(arguments)
        #expect(fast == parsed.invocation)
    }

    @Test(arguments: declined) func unusualListsAreLeftToArgumentParser(arguments: [String]) {
        #expect(RunInvocation.fastParse(arguments[...]) == nil)
    }

    @Test func theDefaultsAreArgumentParsers() throws {
        #expect(RunInvocation() == (try RunCommand.parse([])).invocation)
    }
}

/// The summary line's sizes: MiB with one decimal, rounded to the nearest tenth.
struct SummarySizeTests {
    @Test(arguments: [
        (0, "0.0"), (1_048_576, "1.0"), (5_976_883, "5.7"), (104_857, "0.1"), (104_856, "0.1"), (52_428, "0.0"),
        (1_048_576 * 1024 + 1, "1024.0"), (99_614_720, "95.0"), (104_333_312, "99.5"),
    ] as [(UInt64, String)])
    func mebibytesWithOneDecimal(_ bytes: UInt64, _ text: String) {
        #expect(RunCommand.mebibytes(bytes) == text)
    }

    @Test func agreesWithPrintfAwayFromTies() {
        for bytes in stride(from: UInt64(0), to: 300 * 1_048_576, by: 777_777) {
            let tenths = Double(bytes) / 104_857.6
            guard abs(tenths - tenths.rounded(.down) - 0.5) > 1e-6 else { continue }
            #expect(RunCommand.mebibytes(bytes) == String(format: "%.1f", Double(bytes) / 1_048_576))
        }
    }
}
