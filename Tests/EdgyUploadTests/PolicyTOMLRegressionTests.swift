import EdgyPolicy
import Testing

/// Policy text that aborted the process inside the vendored TOML parser (found by fuzzing): now a
/// syntax error with its line.
@Suite struct PolicyTOMLRegressionTests {
    func diagnostics(_ text: String) -> [PolicyDiagnostic] {
        do {
            _ = try PolicyLoader.parse(text, name: "p", file: "p.toml", directory: nil)
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test(arguments: [("[\u{1b}", 1), ("[!run]", 1), ("[[[a]]]", 1), ("[ ]", 1), ("description = \"x\"\n\n  [[ !x]]", 3), ("[\u{e9}]", 1)])
    func headersThatCannotStartAKeyAreSyntaxErrors(text: String, line: Int) {
        expectOneError(in: text, line: line, saying: "table header must start with a key")
    }

    func expectOneError(in text: String, line: Int, saying message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let found = diagnostics(text)
        #expect(found.count == 1, sourceLocation: sourceLocation)
        #expect(found.first?.line == line, sourceLocation: sourceLocation)
        #expect(found.first?.message.contains(message) == true, "\(found)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [
        "description = \"\"\"\n[!not a header\n\"\"\"",
        "description = '''\n[!not a header'''",
        "[run]\ncommand = [\n  [ \"nested\" ],\n]",
        "description = \"[!\" # [!\n[run]",
    ])
    func bracketsInsideStringsAndArraysAreNotHeaders(text: String) {
        #expect(!diagnostics(text).contains { $0.message.contains("table header must start with a key") })
    }

    /// toml++ asserts on `}` where an array awaits a value (the fuzzer's input had
    /// `command = ["/usr/bin/python3", }`).
    @Test(arguments: [
        ("description = \"d\"\n\n[run]\ncommand = [\"/usr/bin/python3\", }\n", 4), ("a = [}", 1), ("a = [ }", 1), ("a = [[}", 1),
        ("a = [ # comment\n}", 2), ("a = [1,\n\n}", 3), ("a = {b = [}", 1), ("a = [\"x\", \"\"\"y\"\"\", }", 1),
    ])
    func aClosingBraceWhereAnArrayAwaitsAValueIsASyntaxError(text: String, line: Int) {
        expectOneError(in: text, line: line, saying: "expected a value or `]` in the array, got `}`")
    }

    @Test(arguments: [
        "[run]\ncommand = [\"/bin/sh\", \"-c\", \"echo }\"]",
        "[run]\nenv = { A = \"[\", B = \"}\" }",
        "[seccomp]\nallow = [\n  \"read\", # }\n  \"write\",\n]",
        "[run]\ncommand = []\ntask_env = [ ]",
        "description = '''\n[ }\n'''",
        "a = [{ b = 1 }, { c = [2, 3] }]",
    ])
    func bracesInStringsCommentsAndInlineTablesAreFine(text: String) {
        #expect(!diagnostics(text).contains { $0.message.contains("in the array") }, "\(diagnostics(text))")
    }
}
