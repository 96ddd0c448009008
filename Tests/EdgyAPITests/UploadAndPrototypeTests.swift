import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import EdgyAPI

@Suite struct ArchiveUploadTests {
    func upload(_ harness: Harness, _ filename: String, _ bytes: [UInt8], extra: (inout MultipartForm) -> Void = { _ in }) async throws -> TestResponse {
        var form = MultipartForm()
        form.file(filename: filename, bytes)
        extra(&form)
        let body = form.finished()
        return try await harness.test { client in try await client.multipart(body) }
    }

    func files(_ harness: Harness, _ response: TestResponse) async throws -> [String: (bytes: [UInt8], mode: UInt32)] {
        let id = try response.taskID
        let task = try #require(try await harness.store.task(id: id))
        return Dictionary(uniqueKeysWithValues: task.spec.files.map { ($0.path, ($0.contents, $0.mode)) })
    }

    @Test(arguments: [("code.tar", Fixtures.okTar), ("code.tar.gz", Fixtures.okTarGz), ("code.tgz", Fixtures.okTarGz)])
    func tarArchivesUnpack(filename: String, bytes: [UInt8]) async throws {
        let harness = try await Harness()
        let response = try await upload(harness, filename, bytes) { $0.field("command", #"["/bin/sh","src/main.sh"]"#) }
        #expect(response.status == .created, "\(response.text)")
        let files = try await files(harness, response)
        #expect(files.keys.sorted() == ["src/lib/util.sh", "src/main.sh"])
        #expect(files["src/main.sh"]?.bytes == Array("echo hi from tar\n".utf8))
        #expect(files["src/main.sh"]?.mode == 0o755)
        #expect(files["src/lib/util.sh"]?.mode == 0o644)
    }

    @Test func paxLongNamesAndZipUnpack() async throws {
        let harness = try await Harness()
        let pax = try await upload(harness, "long.tar", Fixtures.longPaxTar) { $0.field("input", "cat d/*") }
        #expect(pax.status == .created, "\(pax.text)")
        #expect(try await files(harness, pax).keys.contains("d/" + String(repeating: "x", count: 120) + ".txt"))

        let zip = try await upload(harness, "code.zip", Fixtures.okZip) { $0.field("input", "sh run.sh") }
        #expect(zip.status == .created, "\(zip.text)")
        let files = try await files(harness, zip)
        #expect(files.keys.sorted() == ["dir/b.txt", "main.sh", "run.sh"])
        #expect(files["dir/b.txt"]?.bytes == Array("bee\n".utf8))
        #expect(files["run.sh"]?.bytes == Array(String(repeating: "echo zip\n", count: 50).utf8))
        #expect(files["run.sh"]?.mode == 0o755)
    }

    @Test(arguments: [
        ("evil.tar", Fixtures.traversalTar, "../../etc/passwd"),
        ("abs.tar", Fixtures.absoluteTar, "/etc/cron.d/x"),
        ("link.tar", Fixtures.symlinkTar, "link"),
        ("hard.tar", Fixtures.hardlinkTar, "b"),
        ("dev.tar", Fixtures.deviceTar, "null"),
        ("evil.zip", Fixtures.traversalZip, "../escape.txt"),
        ("link.zip", Fixtures.symlinkZip, "link"),
    ])
    func unsafeEntriesAre400NamingTheEntry(filename: String, bytes: [UInt8], entry: String) async throws {
        let harness = try await Harness()
        let response = try await upload(harness, filename, bytes) { $0.field("input", "x") }
        #expect(response.status == .badRequest)
        let error = try response.error
        #expect(error.code == "invalid_archive")
        #expect(error.field == "file:\(filename)!\(entry)")
        #expect(error.message.contains(entry))
        #expect(try await harness.taskCount() == 0)
    }

    @Test func bombsAndCapsAre413() async throws {
        let harness = try await Harness(config: APIConfiguration(maxArchiveEntries: 2, maxArchiveBytes: 1 << 20))
        let bomb = try await upload(harness, "bomb.tar.gz", Fixtures.bombTarGz) { $0.field("input", "x") }
        #expect(bomb.status == .contentTooLarge)
        #expect(try bomb.error.message.contains("bomb.tar.gz"))
        let entries = try await upload(harness, "code.tar", Fixtures.okTar) { $0.field("input", "x") }
        #expect(entries.status == .contentTooLarge)

        let ratioHarness = try await Harness(config: APIConfiguration(maxRatio: 100))
        let zipBomb = try await upload(ratioHarness, "bomb.zip", Fixtures.bombZip) { $0.field("input", "x") }
        #expect(zipBomb.status == .contentTooLarge)
        #expect(try zipBomb.error.field == "file:bomb.zip!zeros")

        let corrupt = try await upload(harness, "bad.tar.gz", Array(Fixtures.okTarGz.prefix(40))) { $0.field("input", "x") }
        #expect(corrupt.status == .badRequest)
        #expect(try corrupt.error.code == "invalid_archive")
        #expect(try await harness.taskCount() == 0)
    }

    @Test func unsafePlainUploadNamesAreRefused() async throws {
        let harness = try await Harness()
        let response = try await upload(harness, "../x.sh", Array("x".utf8)) { $0.field("input", "x") }
        #expect(response.status == .badRequest)
        #expect(try response.error.field == "file:../x.sh")
    }
}

@Suite struct PrototypeRouteTests {
    /// The README's `POST /`, byte for byte as curl sends it, plus the token.
    @Test func readmePostWorks() async throws {
        let harness = try await Harness()
        try await harness.test { client in
            let response = try await client.postJSON("/", #"{"name":"task1", "input": "const x=1; const y=2; console.log(x+y);"}"#)
            #expect(response.status == .created, "\(response.text)")
            let json = try response.json
            #expect(json["policy"] as? String == "node")
            #expect(json["name"] as? String == "task1")
            let id = try #require(json["id"] as? String)

            let fetched = try await client.get("/\(id)")
            #expect(fetched.status == .ok)
            #expect(try fetched.json["id"] as? String == id)

            let deleted = try await client.send(.delete, "/\(id)")
            #expect(deleted.status == .ok)
            #expect(try deleted.json["status"] as? String == "cancelled")
            #expect(try await client.get("/\(id)").status == .notFound)
        }
        #expect(try await harness.taskCount() == 0)
    }

    /// curl 7.88 for `-F "file=@sample/task.js;type=text/javascript" -F name=task1 -F input=task.js
    /// -H "Content-Type:multipart/form-data"` (captured from the wire). The README's
    /// `-F "name:task1"` form makes curl itself fail before sending anything.
    static let curlPutBody = """
        --------------------------4948ac1ae613f5b0\r
        Content-Disposition: form-data; name="file"; filename="task.js"\r
        Content-Type: text/javascript\r
        \r
        console.log(1+2);
        \r
        --------------------------4948ac1ae613f5b0\r
        Content-Disposition: form-data; name="name"\r
        \r
        task1\r
        --------------------------4948ac1ae613f5b0\r
        Content-Disposition: form-data; name="input"\r
        \r
        task.js\r
        --------------------------4948ac1ae613f5b0--\r

        """
    static let curlContentType = "multipart/form-data; boundary=------------------------4948ac1ae613f5b0"

    @Test func readmePutWorks() async throws {
        let harness = try await Harness()
        let response = try await harness.test { client in
            try await client.execute(uri: "/", method: .put, headers: headers(Harness.submitter, contentType: Self.curlContentType), body: ByteBuffer(string: Self.curlPutBody))
        }
        #expect(response.status == .created, "\(response.text)")
        let json = try response.json
        #expect(json["name"] as? String == "task1")
        #expect(json["policy"] as? String == "node")
        let task = try #require(try await harness.store.task(id: try response.taskID))
        // The named file is the policy's entry (main.js for node), and stays under its own name.
        #expect(task.spec.files.first { $0.path == "main.js" }?.contents == Array("console.log(1+2);\n".utf8))
        #expect(task.spec.files.contains { $0.path == "task.js" })
    }

    @Test func putWithOnlyTheFileUsesItAsEntryAndName() async throws {
        let harness = try await Harness()
        var form = MultipartForm()
        form.file(filename: "task.js", type: "text/javascript", Array("console.log(3)".utf8))
        let single = form.finished()
        let response = try await harness.test { client in try await client.multipart(single, method: .put, uri: "/") }
        #expect(response.status == .created, "\(response.text)")
        #expect(try response.json["name"] as? String == "task.js")

        var two = MultipartForm()
        two.file(filename: "a.js", Array("1".utf8))
        two.file(filename: "b.js", Array("2".utf8))
        let twoFiles = two.finished()
        let ambiguous = try await harness.test { client in try await client.multipart(twoFiles, method: .put, uri: "/") }
        #expect(ambiguous.status == .badRequest)
        #expect(try ambiguous.error.field == "input")

        var missing = MultipartForm()
        missing.file(filename: "a.js", Array("1".utf8))
        missing.field("input", "nope.js")
        let missingFile = missing.finished()
        let notThere = try await harness.test { client in try await client.multipart(missingFile, method: .put, uri: "/") }
        #expect(notThere.status == .badRequest)
        #expect(try notThere.error.field == "input")
    }

    @Test func prototypeRoutesNeedTheRightContentTypeAndAToken() async throws {
        try await Harness().test { client in
            #expect(try await client.postJSON("/", #"{"name":"t","input":"1"}"#, token: nil).status == .unauthorized)
            let wrong = try await client.execute(uri: "/", method: .put, headers: headers(Harness.submitter, contentType: "application/json"), body: ByteBuffer(string: "{}"))
            #expect(wrong.status == .unsupportedMediaType)
            #expect(try await client.get("/favicon.ico").status == .notFound)
        }
    }

    @Test func prototypeWithShippedPolicies() async throws {
        let (catalog, _) = PolicyCatalog.load(directory: TestSupportPaths.policies)
        #expect(catalog.policy(named: "node") != nil)
        let harness = try await Harness(policies: catalog)
        try await harness.test { client in
            let response = try await client.postJSON("/", #"{"name":"task1", "input": "const x=1; const y=2; console.log(x+y);"}"#)
            #expect(response.status == .created, "\(response.text)")
            #expect(try await client.postJSON("/v1/tasks", #"{"input":"echo hi"}"#).status == .created)
        }
    }
}

enum TestSupportPaths {
    static var policies: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/policies"
    }
}
