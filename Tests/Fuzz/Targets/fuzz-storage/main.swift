import EdgyFuzzSupport
import EdgyModel
import EdgyPolicy
import EdgyUpload

/// libFuzzer calls this with what a client controls on the storage routes: a `Range` header, a
/// blob's name, output patterns and the paths they are matched against. A trap is the bug it looks
/// for, and so is a range outside the file or a pattern that matches what its directory walk skips.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let text = String(decoding: bytes, as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)

    let fileSize = bytes.first.map { Int($0) * 37 } ?? 0
    switch ByteRange.parse(text, size: fileSize) {
    case .partial(let lower, let upper):
        if lower < 0 || upper >= fileSize || lower > upper { fatalError("range \(lower)-\(upper) outside \(fileSize) bytes for \(text)") }
    case .whole, .unsatisfiable:
        break
    }
    if let hex = BlobDigest.parse(text), !BlobDigest.isHex(hex) { fatalError("parsed a name that is not hex: \(text)") }

    // First line: a pattern; the others: paths to match it against.
    guard let first = lines.first, let pattern = try? OutputPattern(String(first)) else { return 0 }
    for line in lines.dropFirst().prefix(16) {
        let path = line.split(separator: "/")
        guard path.count <= 64 else { continue }
        if pattern.matches(path) {
            // A walk reaches every matching file: each of its directories must be entered.
            for depth in 0..<path.count where !pattern.reachesBelow(Array(path.prefix(depth))) {
                fatalError("\(pattern) matches \(line) but the walk would skip \(path.prefix(depth))")
            }
        }
    }
    return 0
}

@main struct FuzzStorage {
    static func main() { FuzzDriver.main(fuzz) }
}
