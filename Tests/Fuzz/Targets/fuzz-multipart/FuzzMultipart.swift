import EdgyFuzzSupport
import EdgyUpload

/// libFuzzer calls this with each input; a trap in the decoder is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    // The first line is the Content-Type header, the rest the body.
    let newline = bytes.firstIndex(of: 10) ?? bytes.endIndex
    let contentType = String(decoding: bytes[..<newline], as: UTF8.self)
    let body = Array(bytes[min(newline + 1, bytes.endIndex)...])
    if let boundary = (try? Multipart.boundary(contentType: contentType)) ?? nil {
        for part in (try? Multipart.parse(body, boundary: boundary, maxParts: 64)) ?? [] {
            _ = part.filename.flatMap(Archive.format(ofFilename:))
            _ = Archive.safePath(part.filename ?? part.name)
        }
    }
    _ = HeaderParameters(contentType)["filename"]
    return 0
}

@main struct FuzzMultipart {
    static func main() { FuzzDriver.main(fuzz) }
}
