import Crypto

/// Blobs are named by the SHA-256 of their bytes: 64 lower-case hex digits, written
/// `sha256:<hex>` in the API.
public enum BlobDigest {
    public static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String {
        hex(SHA256.hash(data: Array(bytes)))
    }

    public static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The hex of `sha256:<hex>` (or of a bare hex), or nil when it is neither. Upper-case digits
    /// are refused rather than folded, so one blob has one name.
    public static func parse(_ text: some StringProtocol) -> String? {
        let hex = text.hasPrefix("sha256:") ? text.dropFirst(7) : text[...]
        guard isHex(hex) else { return nil }
        return String(hex)
    }

    public static func isHex(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
