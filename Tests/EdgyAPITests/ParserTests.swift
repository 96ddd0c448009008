import Testing

@testable import EdgyAPI
@testable import EdgyUpload

@Suite struct ParserTests {
    @Test(arguments: [
        ("a.txt", "a.txt"), ("./a/b.js", "a/b.js"), ("dir/sub/file", "dir/sub/file"), ("ünïcode.txt", "ünïcode.txt"),
    ])
    func safePathsPass(raw: String, normalized: String) {
        #expect(Archive.safePath(raw) == normalized)
    }

    @Test(arguments: ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "..", "a\\..\\b", "nul\0byte", "tab\there", String(repeating: "x", count: 256)])
    func unsafePathsFail(raw: String) {
        #expect(Archive.safePath(raw) == nil)
    }

    @Test func headerParameters() throws {
        let params = HeaderParameters(#"form-data; name="file"; filename="a \"b\".js"; x=1"#)
        #expect(params.value == "form-data")
        #expect(params["name"] == "file")
        #expect(params["filename"] == #"a "b".js"#)
        #expect(params["X"] == "1")
        #expect(try Multipart.boundary(contentType: #"multipart/form-data; boundary="abc def""#) == "abc def")
        #expect(try Multipart.boundary(contentType: "application/json") == nil)
        #expect(throws: MultipartError.self) { try Multipart.boundary(contentType: "multipart/form-data") }
    }

    @Test func multipartWithPreambleAndExtendedFilename() throws {
        let body = Array("""
            preamble to ignore\r
            --XyZ\r
            content-disposition: form-data; name="f"; filename*=UTF-8''na%C3%AFve.txt\r
            \r
            data\r\nwith CRLF\r
            --XyZ\r
            Content-Disposition: form-data; name="k"\r
            \r
            v\r
            --XyZ--
            """.utf8)
        let parts = try Multipart.parse(body, boundary: "XyZ", maxParts: 10)
        #expect(parts.count == 2)
        #expect(parts[0].filename == "naïve.txt")
        #expect(parts[0].text == "data\r\nwith CRLF")
        #expect(parts[1].name == "k" && parts[1].filename == nil && parts[1].text == "v")
    }

    @Test(arguments: [
        "--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",          // no name
        "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--",                // no disposition
        "--B\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--B--", // not form-data
        "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx",           // unterminated
        "no boundary here",
        "--B\r\nContent-Disposition: form-data; name=a\r\nno blank line",
    ])
    func malformedMultipartIs400(body: String) {
        #expect(throws: MultipartError.self) { try Multipart.parse(Array(body.utf8), boundary: "B", maxParts: 10) }
    }

    @Test func tooManyPartsIs413() {
        var body = ""
        for i in 0..<5 { body += "--B\r\nContent-Disposition: form-data; name=f\(i)\r\n\r\nx\r\n" }
        body += "--B--"
        #expect(throws: MultipartError.tooLarge("more than 4 multipart parts")) { try Multipart.parse(Array(body.utf8), boundary: "B", maxParts: 4) }
        #expect((try? Multipart.parse(Array(body.utf8), boundary: "B", maxParts: 5))?.count == 5)
    }
}
