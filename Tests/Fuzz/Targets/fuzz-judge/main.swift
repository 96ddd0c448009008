import EdgyFuzzSupport
import EdgyJudge
import EdgyModel

/// libFuzzer calls this with what a client controls when its cases are graded: a regex (first
/// line) and expected text, against a program's output (the rest). A trap, a hang or an answer
/// that contradicts the regex's own definition is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let split = bytes.firstIndex(of: 0x0a) ?? bytes.endIndex
    let pattern = Array(bytes[..<split])
    let output = Array(bytes[min(split + 1, bytes.endIndex)...])

    for comparator in [CaseComparator.exact, .trim, .float(tolerance: 1e-6), .regex] {
        let (passed, detail) = Judge.compare(output, expected: pattern, comparator: comparator)
        if passed != (detail == nil) { fatalError("\(comparator): passed \(passed) but detail \(String(describing: detail))") }
    }
    // Every comparison is reflexive where it can be.
    for comparator in [CaseComparator.exact, .trim, .float(tolerance: 0)] where !Judge.compare(output, expected: output, comparator: comparator).passed {
        fatalError("\(comparator) refuses an output equal to its expectation")
    }
    if let regex = try? LinearRegex(String(decoding: pattern, as: UTF8.self)) {
        _ = regex.matchesWhole(String(decoding: output, as: UTF8.self), budget: 2_000_000)
    }
    // A literal text (every punctuation escaped) matches itself and nothing longer.
    let text = String(decoding: output.prefix(200), as: UTF8.self)
    let escaped = text.unicodeScalars.map { $0.isASCII && !$0.properties.isAlphabetic && !("0"..."9").contains($0) && $0 != " " && $0 != "\n" && $0 != "\t" && $0 != "\r" ? "\\\($0)" : String($0) }.joined()
    if let literal = try? LinearRegex(escaped) {
        if literal.matchesWhole(text) != true { fatalError("the escaped literal \(escaped) does not match \(text.debugDescription)") }
        if literal.matchesWhole(text + "x") != false { fatalError("the escaped literal \(escaped) matches more than \(text.debugDescription)") }
    }
    return 0
}

@main struct FuzzJudge {
    static func main() { FuzzDriver.main(fuzz) }
}
