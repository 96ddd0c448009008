import EdgyPolicy
import Testing

/// `[outputs] paths` and a task's `outputs`: what matches, what a walk may skip, what is refused.
@Suite struct OutputPatternTests {
    @Test(arguments: [
        ("out/**", "out/plot.svg", true), ("out/**", "out/a/b/c.txt", true), ("out/**", "out", false),
        ("out/**", "outside/x", false), ("*.png", "a.png", true), ("*.png", "dir/a.png", false),
        ("**/*.png", "a.png", true), ("**/*.png", "x/y/a.png", true), ("**/*.png", "x/y/a.jpg", false),
        ("out/*.csv", "out/r.csv", true), ("out/*.csv", "out/sub/r.csv", false), ("?.txt", "a.txt", true),
        ("?.txt", "ab.txt", false), ("a/**/z", "a/z", true), ("a/**/z", "a/b/c/z", true), ("a/**/z", "a/b/c/y", false),
        ("*", ".hidden", true), ("report-*-final.txt", "report-2026-final.txt", true), ("*a*b*c", "xxaxxbxxc", true),
        ("*a*b*c", "xxaxxcxxb", false), ("**", "anything/at/all", true),
    ])
    func matching(pattern: String, path: String, expected: Bool) throws {
        #expect(try OutputPattern(pattern).matches(path) == expected, "\(pattern) ~ \(path)")
    }

    @Test func aWalkDescendsOnlyWherePatternsReach() throws {
        let out = try OutputPattern("out/**")
        #expect(out.reachesBelow(["out"]) && out.reachesBelow(["out", "deep"]))
        #expect(out.reachesBelow([]) && !out.reachesBelow(["src"]))
        let top = try OutputPattern("*.png")
        #expect(!top.reachesBelow(["images"]))
        let anywhere = try OutputPattern("**/*.png")
        #expect(anywhere.reachesBelow(["images", "2026"]))
    }

    @Test(arguments: ["", "/etc/passwd", "out/../etc", "./out", "out//x", "out/", "a**/b", "out/x**", String(repeating: "a", count: 513)])
    func refused(pattern: String) {
        #expect(throws: OutputPatternError.self) { try OutputPattern(pattern) }
    }

    @Test func aTaskNarrowsThePolicyNeverWidensIt() throws {
        let selection = OutputSelection(policy: [try OutputPattern("out/**")], task: [try OutputPattern("**")])
        #expect(selection.selects(["out", "a.txt"]))
        #expect(!selection.selects(["secret.txt"]))
        #expect(!selection.reachesBelow(["home"]))
        #expect(OutputSelection(policy: [try OutputPattern("out/**")], task: []).isEmpty)
    }

    @Test func pathologicalPatternsStillAnswer() throws {
        // Many stars, many `**`: matching is bounded by pattern × path, not a search of every split.
        let stars = try OutputPattern(String(repeating: "*a", count: 100) + "b")
        #expect(!stars.matches(String(repeating: "a", count: 255)))
        let depths = try OutputPattern(Array(repeating: "**/x", count: 100).joined(separator: "/") + "/y")
        #expect(!depths.matches(Array(repeating: "x", count: 64).joined(separator: "/")))
        #expect(depths.matches(Array(repeating: "x", count: 100).joined(separator: "/") + "/y"))
    }
}
