import EdgyFuzzSupport
import EdgyTaskJSON

/// libFuzzer calls this with each input; a trap in the decoder is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    _ = try? TaskBody.decode(bytes)
    _ = try? LimitsBody.decode(bytes)
    _ = try? StepBody.decodeList(bytes)
    return 0
}

@main struct FuzzTaskJSON {
    static func main() { FuzzDriver.main(fuzz) }
}
