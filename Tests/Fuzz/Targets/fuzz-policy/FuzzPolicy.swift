import EdgyFuzzSupport
import EdgyPolicy

/// libFuzzer calls this with each input; a trap in the decoder is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    _ = try? PolicyLoader.parse(String(decoding: bytes, as: UTF8.self), name: "fuzz", file: "fuzz.toml", directory: nil)
    return 0
}

@main struct FuzzPolicy {
    static func main() { FuzzDriver.main(fuzz) }
}
