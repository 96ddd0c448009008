import EdgyDNS
import EdgyFuzzSupport

/// libFuzzer calls this with each datagram a jail could send edgyd's resolver; a trap in the
/// decoder, or in building the answer from what it decoded, is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    if let query = try? DNSQuery.parse(ArraySlice(bytes.prefix(DNSQuery.maxDatagram))) {
        let answer = query.response(.noError, addresses: [0x0a00_0001, 0xc633_640a])
        // The answer must decode as one: the question echoed, the records after it.
        if DNSQuery.answers(answer)?.addresses.count != 2 { fatalError("answer to \(query.name) does not decode") }
        _ = query.response(.nameError)
    }
    return 0
}

@main struct FuzzDNS {
    static func main() { FuzzDriver.main(fuzz) }
}
