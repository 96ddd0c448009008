import Foundation

/// One part of a `multipart/form-data` body: a field (no filename) or a file.
struct MultipartPart: Sendable, Hashable {
    var name: String
    var filename: String?
    var contentType: String?
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A small, strict `multipart/form-data` reader (RFC 7578): CRLF line ends, a `form-data`
/// Content-Disposition with a `name` on every part, no nested multiparts, capped part count and header size.
enum Multipart {
    static let maxHeaderBytes = 8 * 1024

    /// The boundary of a `multipart/form-data` Content-Type, or nil when the type is another one.
    /// - Throws: `APIError` 400 when it is multipart but has no usable boundary.
    static func boundary(contentType: String) throws(APIError) -> String? {
        let params = HeaderParameters(contentType)
        guard params.value.lowercased() == "multipart/form-data" else { return nil }
        guard let boundary = params["boundary"], !boundary.isEmpty, boundary.utf8.count <= 70 else {
            throw APIError.badRequest("multipart/form-data without a boundary (1 to 70 characters)")
        }
        return boundary
    }

    static func parse(_ body: [UInt8], boundary: String, maxParts: Int) throws(APIError) -> [MultipartPart] {
        let dash = Array("--\(boundary)".utf8)
        let delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter may follow a preamble (which is ignored).
        var position: Int
        if body.starts(with: dash) {
            position = dash.count
        } else if let found = find(delimiter, in: body, from: 0) {
            position = found + delimiter.count
        } else {
            throw APIError.badRequest("multipart body has no boundary line")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part (transport padding allowed).
            if body[position...].starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]) { break }
            while position < body.count, body[position] == UInt8(ascii: " ") || body[position] == UInt8(ascii: "\t") { position += 1 }
            guard body[position...].starts(with: [13, 10]) else { throw APIError.badRequest("malformed multipart boundary line") }
            position += 2
            guard parts.count < maxParts else { throw APIError.tooLarge("more than \(maxParts) multipart parts") }
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: position, limit: maxHeaderBytes) else {
                throw APIError.badRequest("multipart part headers are missing or longer than \(maxHeaderBytes) bytes")
            }
            let headers = try parseHeaders(body[position..<headerEnd])
            let bodyStart = headerEnd + 4
            guard let end = find(delimiter, in: body, from: bodyStart) else {
                throw APIError.badRequest("multipart body ends without a closing boundary")
            }
            guard let disposition = headers["content-disposition"] else {
                throw APIError.badRequest("a multipart part has no Content-Disposition")
            }
            let params = HeaderParameters(disposition)
            guard params.value.lowercased() == "form-data", let name = params["name"] else {
                throw APIError.badRequest("a multipart part's Content-Disposition must be form-data with a name")
            }
            let filename = params["filename*"].flatMap(decodeExtendedValue) ?? params["filename"]
            parts.append(MultipartPart(name: name, filename: filename, contentType: headers["content-type"], body: Array(body[bodyStart..<end])))
            position = end + delimiter.count
            guard position < body.count else { throw APIError.badRequest("multipart body ends without a closing boundary") }
        }
        return parts
    }

    private static func parseHeaders(_ bytes: ArraySlice<UInt8>) throws(APIError) -> [String: String] {
        var headers: [String: String] = [:]
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw APIError.badRequest("malformed multipart part header") }
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
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, limit: Int = .max) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
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

/// `value; key=token; key2="quoted \" string"` as in Content-Type and Content-Disposition.
struct HeaderParameters {
    var value: String
    private var parameters: [String: String] = [:]

    init(_ header: String) {
        var scalars = Substring(header)
        func skipSpaces() { while let c = scalars.first, c == " " || c == "\t" { scalars.removeFirst() } }
        let semicolon = scalars.firstIndex(of: ";") ?? scalars.endIndex
        value = scalars[..<semicolon].trimmingCharacters(in: .whitespaces)
        scalars = scalars[semicolon...]
        while scalars.first == ";" {
            scalars.removeFirst()
            skipSpaces()
            let eq = scalars.firstIndex(where: { $0 == "=" || $0 == ";" }) ?? scalars.endIndex
            let key = scalars[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            scalars = scalars[eq...]
            guard scalars.first == "=" else { continue }
            scalars.removeFirst()
            skipSpaces()
            var parsed = ""
            if scalars.first == "\"" {
                scalars.removeFirst()
                while let c = scalars.first, c != "\"" {
                    scalars.removeFirst()
                    if c == "\\", let escaped = scalars.first {
                        parsed.append(escaped)
                        scalars.removeFirst()
                    } else {
                        parsed.append(c)
                    }
                }
                if !scalars.isEmpty { scalars.removeFirst() }
                let next = scalars.firstIndex(of: ";") ?? scalars.endIndex
                scalars = scalars[next...]
            } else {
                let next = scalars.firstIndex(of: ";") ?? scalars.endIndex
                parsed = scalars[..<next].trimmingCharacters(in: .whitespaces)
                scalars = scalars[next...]
            }
            if !key.isEmpty, parameters[key] == nil { parameters[key] = parsed }
        }
    }

    subscript(_ key: String) -> String? { parameters[key.lowercased()] }
}
