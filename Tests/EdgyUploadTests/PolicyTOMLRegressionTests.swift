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
        let found = diagnostics(text)
        #expect(found.count == 1)
        #expect(found.first?.line == line)
        #expect(found.first?.message.contains("table header must start with a key") == true, "\(found)")
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
}
