import EdgyFuzzSupport
import EdgyRunProtocol

/// libFuzzer calls this with what a client of `edgy helper` sends as its request. A trap, or a
/// decoded request that does not encode back to the same arguments, is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    guard let arguments = try? RunHelperRequest.decode(bytes) else { return 0 }
    if arguments.count > RunHelperRequest.maxArguments { fatalError("\(arguments.count) arguments decoded") }
    // Repaired UTF-8 may grow, so only the decoded arguments' own round trip must hold.
    if let encoded = RunHelperRequest.encode(arguments), (try? RunHelperRequest.decode(encoded)) != arguments {
        fatalError("\(arguments) does not survive encode and decode")
    }
    _ = RunHelperReply(Array(bytes.prefix(5)))
    return 0
}

@main struct FuzzRunHelper {
    static func main() { FuzzDriver.main(fuzz) }
}
