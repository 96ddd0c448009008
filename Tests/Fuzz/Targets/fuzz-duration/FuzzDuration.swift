import EdgyFuzzSupport
import EdgyAuth
import Foundation

/// libFuzzer calls this with each input; a trap in the decoder is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    if let seconds = TokenLifetime.parse(String(decoding: bytes, as: UTF8.self)) {
        // What the API and CLI do with it next: an expiry date, stored in whole microseconds.
        let expiry = Date().addingTimeInterval(seconds)
        _ = Int64((expiry.timeIntervalSince1970 * 1e6).rounded())
    }
    return 0
}

@main struct FuzzDuration {
    static func main() { FuzzDriver.main(fuzz) }
}
