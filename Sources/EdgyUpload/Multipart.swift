import Foundation

/// One part of a `multipart/form-data` body: a field (no filename) or a file.
public struct MultipartPart: Sendable, Hashable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A small, strict `multipart/form-data` reader (RFC 7578): CRLF line ends, a `form-data`
/// Content-Disposition with a `name` on every part, no nested multiparts, capped part count and header size.
/// Why a multipart body is refused: `invalid` (400) or `tooLarge` (413).
public struct MultipartError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable { case invalid, tooLarge }
    public var kind: Kind
    public var message: String

    static func invalid(_ message: String) -> MultipartError { MultipartError(kind: .invalid, message: message) }
    static func tooLarge(_ message: String) -> MultipartError { MultipartError(kind: .tooLarge, message: message) }

    public var description: String { "\(kind): \(message)" }
}

public enum Multipart {
    public static let maxHeaderBytes = 8 * 1024

    /// The boundary of a `multipart/form-data` Content-Type, or nil when the type is another one.
    /// - Throws: `MultipartError.invalid` when it is multipart but has no usable boundary.
    public static func boundary(contentType: String) throws(MultipartError) -> String? {
        let params = HeaderParameters(contentType)
        guard params.value.lowercased() == "multipart/form-data" else { return nil }
        guard let boundary = params["boundary"], !boundary.isEmpty, boundary.utf8.count <= 70 else {
            throw .invalid("multipart/form-data without a boundary (1 to 70 characters)")
        }
        return boundary
    }

    public static func parse(_ body: [UInt8], boundary: String, maxParts: Int) throws(MultipartError) -> [MultipartPart] {
        let dash = Array("--\(boundary)".utf8)
        let delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter may follow a preamble (which is ignored).
        var position: Int
        if body.starts(with: dash) {
            position = dash.count
        } else if let found = find(delimiter, in: body, from: 0) {
            position = found + delimiter.count
        } else {
            throw .invalid("multipart body has no boundary line")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part (transport padding allowed).
            if body[position...].starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]) { break }
            while position < body.count, body[position] == UInt8(ascii: " ") || body[position] == UInt8(ascii: "\t") { position += 1 }
            guard body[position...].starts(with: [13, 10]) else { throw .invalid("malformed multipart boundary line") }
            position += 2
            guard parts.count < maxParts else { throw .tooLarge("more than \(maxParts) multipart parts") }
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: position, limit: maxHeaderBytes) else {
                throw .invalid("multipart part headers are missing or longer than \(maxHeaderBytes) bytes")
            }
            let headers = try parseHeaders(body[position..<headerEnd])
            let bodyStart = headerEnd + 4
            guard let end = find(delimiter, in: body, from: bodyStart) else {
                throw .invalid("multipart body ends without a closing boundary")
            }
            guard let disposition = headers["content-disposition"] else {
                throw .invalid("a multipart part has no Content-Disposition")
            }
            let params = HeaderParameters(disposition)
            guard params.value.lowercased() == "form-data", let name = params["name"] else {
                throw .invalid("a multipart part's Content-Disposition must be form-data with a name")
            }
            let filename = params["filename*"].flatMap(decodeExtendedValue) ?? params["filename"]
            parts.append(MultipartPart(name: name, filename: filename, contentType: headers["content-type"], body: Array(body[bodyStart..<end])))
            position = end + delimiter.count
            guard position < body.count else { throw .invalid("multipart body ends without a closing boundary") }
        }
        return parts
    }

    private static func parseHeaders(_ bytes: ArraySlice<UInt8>) throws(MultipartError) -> [String: String] {
        var headers: [String: String] = [:]
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .invalid("malformed multipart part header") }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return headers
    }

    /// RFC 5987 `UTF-8''name%20here`.
    private static func decodeExtendedValue(_ value: String) -> String? {
        guard let range = value.range(of: "''") else { return nil }
        guard value[..<range.lowerBound].lowercased() == "utf-8" else { return nil }
        return String(value[range.upperBound...]).removingPercentEncoding
    }

    /// The index of `needle` in `haystack` at or after `start`, looking no further than `limit` bytes.
    public static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, limit: Int = .max) -> Int? {
        guard start >= 0, limit >= 0, let first = needle.first, haystack.count >= needle.count else { return nil }
        let last = min(haystack.count - needle.count, start > Int.max - limit ? Int.max : start + limit)
        guard start <= last else { return nil }
        return haystack.withUnsafeBufferPointer { hay -> Int? in
            var i = start
            while i <= last {
                if hay[i] == first {
                    var j = 1
                    while j < needle.count, hay[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return i }
                }
                i += 1
            }
            return nil
        }
    }
}

