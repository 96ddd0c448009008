import PropertyBased
import Testing
@testable import EdgyCgroup

/// The control files' parsers read the bytes a `pread` returned, without a String: the end of
/// every attempt parses nine of them on its critical path.
@Suite struct CounterParsingTests {
    @Test(arguments: [
        ("12345\n", UInt64(12345)), ("0", 0), (" 7 \t\n", 7), ("18446744073709551615\n", .max),
        ("18446744073709551616\n", nil), ("max\n", nil), ("", nil), ("\n", nil), ("7x", nil), ("-1", nil),
        ("+1", nil), ("1 2", nil),
    ] as [(String, UInt64?)])
    func readsANumberFile(text: String, expected: UInt64?) {
        #expect(CgroupFS.number(in: text) == expected)
    }

    @Test func readsKeyedFiles() {
        let oomControl = "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n"
        #expect(CgroupFS.keyed("oom_kill", in: oomControl) == 3)
        #expect(CgroupFS.keyed("oom_kill_disable", in: oomControl) == 1)
        #expect(CgroupFS.keyed("oom", in: oomControl) == nil)
        let cpuStat = "usage_usec 1504\nuser_usec 900\nsystem_usec 604\nnr_periods 0\n"
        #expect(CgroupFS.keyed("usage_usec", in: cpuStat) == 1504)
        #expect(CgroupFS.keyed("system_usec", in: cpuStat) == 604)
        #expect(CgroupFS.keyed("max", in: "max 2") == 2)
        #expect(CgroupFS.keyed("max", in: "") == nil)
        #expect(CgroupFS.keyed("populated", in: "populated 0\nfrozen 0\n") == 0)
    }

    /// Against a model in Strings, on text made of the pieces control files are made of, and of
    /// what they never hold.
    @Test func agreesWithAModelOnAnyText() async {
        await propertyCheck(count: 2000, input: Self.text) { text in
            #expect(CgroupFS.number(in: text) == Self.modelNumber(text[...]))
            for key in ["oom_kill", "max", "a"] {
                #expect(CgroupFS.keyed(key, in: text) == Self.modelKeyed(key, text))
            }
        }
    }

    static func modelNumber(_ text: Substring) -> UInt64? {
        let trimmed = text.drop { " \n\t".contains($0) }.reversed().drop { " \n\t".contains($0) }.reversed()
        let digits = String(trimmed)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    static func modelKeyed(_ key: String, _ text: String) -> UInt64? {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where line.hasPrefix(key + " ") {
            return modelNumber(line.dropFirst(key.count + 1))
        }
        return nil
    }

    static let text = Generator<String, Shrink.None<String>> { rng in
        let pieces = ["0", "1", "9", "42", " ", "\n", "\t", "max", "-", "+", "x", "é", "oom_kill", "oom_kill_disable", "a",
                      "18446744073709551615", "99999999999999999999"]
        return (0..<Int.random(in: 0...10, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }
}
