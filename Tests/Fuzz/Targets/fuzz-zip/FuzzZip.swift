import EdgyFuzzSupport
import EdgyUpload

/// libFuzzer calls this with each input; a trap in the decoder is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    var budget = UploadBudget(limit: 1 << 20)
    _ = try? Archive.unpack(bytes, format: .zip, limits: ArchiveLimits(maxEntries: 64, maxBytes: 1 << 20, maxRatio: 100), budget: &budget)
    _ = try? Inflate.decompress(bytes[...], format: .raw, maxOutput: 1 << 20)
    return 0
}

@main struct FuzzZip {
    static func main() { FuzzDriver.main(fuzz) }
}
