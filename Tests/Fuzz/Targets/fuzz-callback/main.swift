import EdgyFuzzSupport
import EdgyPolicy

/// libFuzzer calls this with what a client controls in a task's `callback_url` (first line) and
/// what an operator writes in `webhook_allow` (the rest, comma-separated). A trap, or a URL that
/// parses to a host outside the grammar it promises, is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let split = bytes.firstIndex(of: 0x0a) ?? bytes.endIndex
    let text = String(decoding: bytes[..<split], as: UTF8.self)
    let allowText = String(decoding: bytes[min(split + 1, bytes.endIndex)...], as: UTF8.self)
    let allow = (try? CallbackAllowlist.parse(allowText.split(separator: ",").map(String.init))) ?? CallbackAllowlist()
    if let url = try? CallbackURL.parse(text) {
        if url.host.isEmpty || url.host.contains("/") || url.host.contains("@") || !(1...65535).contains(url.port) {
            fatalError("\(text.debugDescription) parsed to host \(url.host.debugDescription) port \(url.port)")
        }
        _ = allow.refusal(url)
        _ = allow.refusal(address: Array(bytes.prefix(16)), host: url.host)
        _ = allow.refusal(address: Array(bytes.prefix(4)), host: url.host)
    }
    return 0
}

@main struct FuzzCallback {
    static func main() { FuzzDriver.main(fuzz) }
}
