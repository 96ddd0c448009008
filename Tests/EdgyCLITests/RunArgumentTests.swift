import ArgumentParser
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
