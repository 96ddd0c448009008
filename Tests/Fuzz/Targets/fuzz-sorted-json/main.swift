import EdgyFuzzSupport
import EdgyJSON
import EdgyModel
import Foundation

/// Any JSON value, as a client may send one and get it back inside an answer.
enum Value: Codable {
    case null, bool(Bool), number(Double), string(String), array([Value]), object([String: Value])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let value = try? c.decode(Bool.self) { self = .bool(value) }
        else if let value = try? c.decode(Double.self) { self = .number(value) }
        else if let value = try? c.decode(String.self) { self = .string(value) }
        else if let value = try? c.decode([Value].self) { self = .array(value) }
        else { self = .object(try c.decode([String: Value].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let value): try c.encode(value)
        case .number(let value): try c.encode(value)
        case .string(let value): try c.encode(value)
        case .array(let value): try c.encode(value)
        case .object(let value): try c.encode(value)
        }
    }
}

func expectSame<T: Encodable>(_ value: T) {
    let fast = try? SortedJSON.encode(value)
    let reference = try? Array(SortedJSON.fallbackEncoder().encode(value))
    if fast != reference {
        fatalError("SortedJSON wrote \(fast.map { String(decoding: $0, as: UTF8.self) } ?? "an error") where JSONEncoder wrote \(reference.map { String(decoding: $0, as: UTF8.self) } ?? "an error")")
    }
}

/// libFuzzer calls this with bytes a client controls: as JSON (a task's fields), as text (a name,
/// an output), as an object's key. `SortedJSON` must write what `JSONEncoder` writes, byte for byte.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let text = String(decoding: bytes, as: UTF8.self)
    expectSame([text])
    expectSame(Dictionary([(text, bytes.count), ("", 0), ("z", 1)]) { first, _ in first })
    expectSame(KeyedObject(text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)))
    if let value = try? JSONDecoder().decode(Value.self, from: Data(bytes)) { expectSame(value) }
    var report = AttemptReport(outcome: .exited, exitCode: 0, stdout: bytes, stderr: Array(bytes.reversed()), policyName: text)
    report.outputs = OutputsReport(files: [.init(path: text, size: bytes.count, sha256: "", mode: 0o644)], collectMs: Double(bytes.count) / 7)
    expectSame(report)
    return 0
}

@main struct FuzzSortedJSON {
    static func main() { FuzzDriver.main(fuzz) }
}
