import EdgyModel
import EdgyStore
import EdgyTestSupport
import Foundation
import HummingbirdTesting
import Testing

@testable import EdgyAPI

/// The prototype README's curl commands against a live server on port 0, with the token header
/// added. scripts/setup installs curl.
@Suite
struct CurlTests {
    struct Run: Sendable {
        var status: Int32
        var body: String
        var httpCode: Int?
    }

    /// Runs curl with `-w '\n%{http_code}'` appended, so the last line is the status.
    static func curl(_ arguments: [String], in directory: URL) async throws -> Run {
        let run = try await BoundedProcess.run("/usr/bin/curl", ["-s", "-w", "\n%{http_code}"] + arguments, directory: directory.path)
        let status = run.termination.status
        let output = run.stdout
        var lines = output.components(separatedBy: "\n")
        let code = lines.popLast().flatMap { Int($0) }
        return Run(status: status, body: lines.joined(separator: "\n"), httpCode: code)
    }

    static func id(_ run: Run) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(run.body.utf8)) as? [String: Any]
        return try #require(object?["id"] as? String)
    }

    @Test func readmeCommandsWork() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgy-curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("sample"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("console.log(1+2);\n".utf8).write(to: directory.appendingPathComponent("sample/task.js"))

        let harness = try await Harness()
        try await harness.test(.live) { client in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            let auth = "Authorization: Bearer \(Harness.submitter)"

            let post = try await Self.curl(
                ["-X", "POST", "-H", "Content-Type: application/json", "-H", auth,
                 "-d", #"{"name":"task1", "input": "const x=1; const y=2; console.log(x+y);"}"#, base], in: directory)
            #expect(post.status == 0)
            #expect(post.httpCode == 201, "\(post.body)")
            let postID = try Self.id(post)

            // As in the README, with `name=`/`input=` (curl's form syntax) instead of `name:`/`input:`.
            let put = try await Self.curl(
                ["-X", "PUT", "-F", "file=@sample/task.js;type=text/javascript", "-F", "name=task1", "-F", "input=task.js",
                 "-H", "Content-Type:multipart/form-data", "-H", auth, base], in: directory)
            #expect(put.httpCode == 201, "\(put.body)")
            let putID = try Self.id(put)
            let putUUID = try #require(UUID(uuidString: putID))
            let stored = try #require(try await harness.store.task(id: putUUID))
            #expect(stored.spec.name == "task1")
            #expect(stored.spec.files.contains { $0.path == "main.js" })

            // The README's literal `-F "name:task1"` is refused by curl before anything is sent.
            let literal = try await Self.curl(
                ["-X", "PUT", "-F", "file=@sample/task.js;type=text/javascript", "-F", "name:task1", "-F", "input:task.js",
                 "-H", "Content-Type:multipart/form-data", "-H", auth, base], in: directory)
            #expect(literal.status == 2)

            // Dropping the malformed fields works: the one file is the entry and names the task.
            let fileOnly = try await Self.curl(
                ["-X", "PUT", "-F", "file=@sample/task.js;type=text/javascript", "-H", "Content-Type:multipart/form-data", "-H", auth, base],
                in: directory)
            #expect(fileOnly.httpCode == 201, "\(fileOnly.body)")

            let get = try await Self.curl(["-X", "GET", "-H", auth, "\(base)/\(postID)"], in: directory)
            #expect(get.httpCode == 200)
            #expect(try Self.id(get) == postID)
            let delete = try await Self.curl(["-X", "DELETE", "-H", auth, "\(base)/\(postID)"], in: directory)
            #expect(delete.httpCode == 200)
            let gone = try await Self.curl(["-X", "GET", "-H", auth, "\(base)/\(postID)"], in: directory)
            #expect(gone.httpCode == 404)
            let unauthenticated = try await Self.curl(["-X", "GET", "\(base)/\(putID)"], in: directory)
            #expect(unauthenticated.httpCode == 401)
        }
    }
}
