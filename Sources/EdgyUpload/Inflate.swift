import CEdgyZlib

/// zlib's inflate with an output cap, for `.tar.gz` and `.zip` uploads.
public enum Inflate {
    public enum Format: Sendable {
        /// RFC 1952 gzip (one member).
        case gzip
        /// RFC 1951 raw deflate, as in zip entries.
        case raw

        var windowBits: Int32 { self == .gzip ? 15 + 16 : -15 }
    }

    public enum Failure: Error, Equatable, Sendable {
        /// The output would exceed the cap.
        case tooLarge
        /// Not valid compressed data, or truncated.
        case corrupt(String)
    }

    /// Decompresses `input`, failing as soon as the output would pass `maxOutput` bytes.
    public static func decompress(_ input: ArraySlice<UInt8>, format: Format, maxOutput: Int) throws(Failure) -> [UInt8] {
        guard input.count <= Int(UInt32.max) else { throw .tooLarge }
        let maxOutput = max(maxOutput, 0)
        var stream = z_stream()
        guard inflateInit2_(&stream, format.windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        let chunk = 64 * 1024
        var buffer = [UInt8](repeating: 0, count: chunk)
        let result: Result<Void, Failure> = input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            while true {
                let status = buffer.withUnsafeMutableBufferPointer { outBuf -> Int32 in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(chunk)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk - Int(stream.avail_out)
                if output.count + produced > maxOutput { return .failure(.tooLarge) }
                output.append(contentsOf: buffer[0..<produced])
                switch status {
                case Z_STREAM_END: return .success(())
                case Z_OK: continue
                case Z_BUF_ERROR:
                    // No progress possible: the input ended before the stream did.
                    if produced == 0 { return .failure(.corrupt("truncated compressed data")) }
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "inflate error \(status)"
                    return .failure(.corrupt(message))
                }
            }
        }
        try result.get()
        return output
    }

    /// The CRC-32 zip and gzip use.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: CEdgyZlib.crc32(0, $0.baseAddress, UInt32(truncatingIfNeeded: $0.count))) }
    }
}
