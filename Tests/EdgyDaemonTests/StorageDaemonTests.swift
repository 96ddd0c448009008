import EdgyModel
import EdgyPostgresTestSupport
import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// Files out and blobs in, through a real `edgyd` with real jails and the shipped policies (whose
/// `[outputs]` collect `out/**`), driven with curl as a client would.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct StorageDaemonTests {
    /// Writes a plot, a binary file and a file outside `out/`, then prints done.
    static let plotter = """
        import os
        os.makedirs('out/deep', exist_ok=True)
        open('out/plot.svg', 'w').write('<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>\\n')
        open('out/deep/data.bin', 'wb').write(bytes(range(256)) * 4)
        open('notes.txt', 'w').write('not under out/')
        os.symlink('/etc/passwd', 'out/passwd')
        print('done')
        """

    static func submit(_ daemon: DaemonProcess, _ body: [String: Any], bearer: String? = nil) throws -> [String: Any] {
        let (status, task) = try daemon.syncRequest("POST", "/v1/tasks?wait=60", json: body, bearer: bearer)
        #expect(status == 200, "\(String(describing: task))")
        return DaemonTests.json(task)
    }

    static func sha256(_ bytes: [UInt8]) -> String { BlobDigest.sha256Hex(bytes) }

    /// The blob files on disk under the daemon's state directory.
    static func blobFiles(_ daemon: DaemonProcess) -> [String] {
        let root = daemon.stateDirectory + "/blobs"
        let all = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? []
        return all.filter { !$0.hasPrefix(".tmp") && $0.split(separator: "/").count == 3 }.map { String($0.split(separator: "/").last!) }
    }

    @Test func aPythonTasksFilesComeBackByteForByte() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let task = try Self.submit(daemon, ["policy": "python", "input": Self.plotter])
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let id = try #require(task["id"] as? String)
        let outputs = DaemonTests.json(DaemonTests.json(task["result"])["outputs"])
        #expect(outputs["outputs_truncated"] as? Bool == false)

        let (listed, list) = try await daemon.request("GET", "/v1/tasks/\(id)/files")
        #expect(listed == 200)
        let files = (DaemonTests.json(list)["files"] as? [[String: Any]]) ?? []
        #expect(files.compactMap { $0["path"] as? String } == ["out/deep/data.bin", "out/plot.svg"], "\(String(describing: list))")
        let omitted = (DaemonTests.json(list)["omitted"] as? [[String: Any]]) ?? []
        #expect(omitted.map { "\($0["path"] ?? "") \($0["reason"] ?? "")" } == ["out/passwd symlink"])
        let binary = (0..<4).flatMap { _ in (0...255).map(UInt8.init) }
        #expect(files.first?["sha256"] as? String == Self.sha256(binary))
        #expect(files.first?["size"] as? Int == 1024)

        // One file, as a client reads it: exact bytes, a Content-Type, and ranges.
        let svg = try daemon.shell(#"curl -s -D /dev/stderr -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/\#(id)/files/out/plot.svg 2>/tmp/edgy-svg-headers-\#(id); cat /tmp/edgy-svg-headers-\#(id) | tr -d '\r' | grep -i '^content-type'; rm -f /tmp/edgy-svg-headers-\#(id)"#)
        #expect(svg.hasPrefix(#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#), "\(svg)")
        #expect(svg.lowercased().contains("content-type: image/svg+xml"), "\(svg)")
        let sum = try daemon.shell(#"curl -sf -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/\#(id)/files/out/deep/data.bin | sha256sum"#)
        #expect(sum.hasPrefix(Self.sha256(binary)), "\(sum)")
        let range = try daemon.shell(#"curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Range: bytes=256-511" -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/\#(id)/files/out/deep/data.bin"#)
        #expect(range == "206 256")
        let unsatisfiable = try daemon.shell(#"curl -s -o /dev/null -w '%{http_code}' -H "Range: bytes=5000-" -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/\#(id)/files/out/deep/data.bin"#)
        #expect(unsatisfiable == "416")
        #expect(try daemon.syncRequest("GET", "/v1/tasks/\(id)/files/notes.txt").0 == 404)

        // All of them in one archive, which tar reads.
        let archive = try daemon.shell(#"curl -sf -H "Authorization: Bearer $TOKEN" $EDGY/v1/tasks/\#(id)/files.tar.gz | tar -tzvf - | awk '{print $1, $3, $6}'"#)
        #expect(archive.split(separator: "\n").map(String.init) == ["-rw-r--r-- 1024 out/deep/data.bin", "-rw-r--r-- 62 out/plot.svg"], "\(archive)")
    }

    @Test func twoTasksWritingTheSameBytesStoreOneBlobUntilTheLastGoes() async throws {
        // A short lease makes the janitor (and its garbage collection) run every second.
        let daemon = try DaemonProcess(environment: ["EDGY_LEASE_S": "2"])
        defer { daemon.stop() }
        // Large enough to be a file of the blob directory (small blobs live in the database).
        let program = "import os; os.makedirs('out', exist_ok=True); open('out/same.txt', 'w').write('identical bytes\\n' * 10000)"
        let first = try Self.submit(daemon, ["policy": "python", "input": program])
        let second = try Self.submit(daemon, ["policy": "python", "input": program])
        let digest = Self.sha256(Array(String(repeating: "identical bytes\n", count: 10000).utf8))
        #expect(Self.blobFiles(daemon).filter { $0 == digest }.count == 1)
        for task in [first, second] {
            let id = try #require(task["id"] as? String)
            let files = (DaemonTests.json(try await daemon.request("GET", "/v1/tasks/\(id)/files").1)["files"] as? [[String: Any]]) ?? []
            #expect(files.first?["sha256"] as? String == digest)
        }
        // Deleting one task keeps the blob; deleting the other lets the janitor remove it.
        #expect(try await daemon.request("DELETE", "/v1/tasks/\(first["id"] as? String ?? "")").0 == 204)
        try await Task.sleep(for: .seconds(3))
        #expect(Self.blobFiles(daemon).contains(digest))
        #expect(try await daemon.request("DELETE", "/v1/tasks/\(second["id"] as? String ?? "")").0 == 204)
        let deadline = Date().addingTimeInterval(20)
        while Self.blobFiles(daemon).contains(digest) && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
        #expect(!Self.blobFiles(daemon).contains(digest), "the blob outlived its last task")
    }

    @Test func anUploadedBlobServesTasksAndOnlyItsTenant() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let path = daemon.stateDirectory + ".upload"
        try Data(data).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let upload = #"curl -s -w ' %{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/octet-stream" --data-binary @\#(path) $EDGY/v1/blobs"#
        let created = try daemon.shell(upload)
        #expect(created.hasSuffix(" 201"), "\(created)")
        #expect(try daemon.shell(upload).hasSuffix(" 200"), "the same bytes again are the same blob")
        let blob = "sha256:" + Self.sha256(data)
        #expect(created.contains(blob))

        // Two tasks read the one upload.
        let reader = "import hashlib; print(hashlib.sha256(open('data.bin', 'rb').read()).hexdigest())"
        for _ in 0..<2 {
            let task = try Self.submit(daemon, ["policy": "python", "input": reader, "files": [["path": "data.bin", "blob": blob]]])
            #expect(task["stdout"] as? String == Self.sha256(data) + "\n", "\(task)")
        }
        let sum = try daemon.shell(#"curl -sf -H "Authorization: Bearer $TOKEN" $EDGY/v1/blobs/\#(blob) | sha256sum"#)
        #expect(sum.hasPrefix(Self.sha256(data)))

        // Another tenant sees none of it: not the blob, not the task's files, not by reference.
        let (_, token) = try await daemon.request("POST", "/v1/tokens", json: ["name": "o", "role": "submitter", "tenant": "other"])
        let other = try #require(DaemonTests.json(token)["token"] as? String)
        #expect(try daemon.syncRequest("GET", "/v1/blobs/\(blob)", bearer: other).0 == 404)
        #expect(try daemon.syncRequest("DELETE", "/v1/blobs/\(blob)", bearer: other).0 == 404)
        let (refused, error) = try daemon.syncRequest(
            "POST", "/v1/tasks", json: ["policy": "python", "input": reader, "files": [["path": "data.bin", "blob": blob]]], bearer: other)
        #expect(refused == 422)
        let detail = DaemonTests.json(DaemonTests.json(error)["error"])
        #expect(detail["code"] as? String == "blob_not_found" && detail["field"] as? String == "files[0].blob", "\(String(describing: error))")
        let plot = try Self.submit(daemon, ["policy": "python", "input": Self.plotter])
        let id = try #require(plot["id"] as? String)
        #expect(try daemon.syncRequest("GET", "/v1/tasks/\(id)/files", bearer: other).0 == 404)
        #expect(try daemon.syncRequest("GET", "/v1/tasks/\(id)/files/out/plot.svg", bearer: other).0 == 404)
        #expect(try daemon.syncRequest("GET", "/v1/tasks/\(id)/files.tar.gz", bearer: other).0 == 404)
        let svg = "sha256:" + Self.sha256(Array(#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#.utf8 + [10]))
        #expect(try daemon.syncRequest("GET", "/v1/blobs/\(svg)", bearer: other).0 == 404)
        #expect(try daemon.syncRequest("GET", "/v1/blobs/\(svg)").0 == 200, "an output is a blob of its own tenant")

        // Bad names and oversized bodies get clear errors.
        let (bad, badBody) = try await daemon.request("GET", "/v1/blobs/sha256:XYZ")
        #expect(bad == 400 && DaemonTests.json(DaemonTests.json(badBody)["error"])["field"] as? String == "digest")
        let tooBig = try daemon.shell(#"head -c 70000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" --data-binary @- $EDGY/v1/blobs"#)
        #expect(tooBig == "413")
    }

    @Test func aBlobCorruptedOnDiskIsRefused() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        // Large enough to be a file of the blob directory (small blobs live in the database).
        let bytes = Array(String(repeating: "precious input\n", count: 10000).utf8)
        let (status, body) = try await daemon.request("POST", "/v1/blobs", body: Data(bytes), contentType: "application/octet-stream")
        #expect(status == 201)
        let blob = try #require(DaemonTests.json(body)["blob"] as? String)
        let hex = String(blob.dropFirst(7))
        let file = "\(daemon.stateDirectory)/blobs/\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex)"
        var tampered = bytes
        tampered[7] = UInt8(ascii: "X")
        try Data(tampered).write(to: URL(fileURLWithPath: file))
        let (refused, error) = try await daemon.request("GET", "/v1/blobs/\(blob)")
        #expect(refused == 500)
        #expect(DaemonTests.json(DaemonTests.json(error)["error"])["code"] as? String == "blob_corrupted")
        // A task given it fails to set up rather than see the wrong bytes.
        let task = try Self.submit(daemon, ["policy": "sh", "input": "cat data", "files": [["path": "data", "blob": blob]], "max_attempts": 1])
        #expect(task["outcome"] as? String == "setup_error", "\(task)")
        #expect((task["stdout"] as? String ?? "").isEmpty)
        let metrics = try daemon.shell(#"curl -s -H "Authorization: Bearer $TOKEN" $EDGY/metrics | grep '^edgy_blob_corrupted_total'"#)
        #expect(metrics.hasPrefix("edgy_blob_corrupted_total 2"), "\(metrics)")
    }

    @Test(.tags(.postgres), .requiresPostgres)
    func aBlobUploadedToOneHostServesATaskAnotherHostRuns() async throws {
        let url = try await ManyHostsTests.freshDatabase()
        let uploader = try DaemonProcess(workers: 1, extraArguments: ["--store", url])
        defer { uploader.stop() }
        let bytes = Array("shared through PostgreSQL\n".utf8)
        let (status, body) = try await uploader.request("POST", "/v1/blobs", body: Data(bytes), contentType: "application/octet-stream")
        #expect(status == 201)
        let blob = try #require(DaemonTests.json(body)["blob"] as? String)
        // The uploader stops, so the other host is the one that claims the task.
        uploader.stop()
        let runner = try DaemonProcess(workers: 1, extraArguments: ["--store", url])
        defer { runner.stop() }
        // The admin tokens of the two hosts differ; both are admins of the one store.
        let task = try Self.submit(runner, [
            "policy": "sh", "input": "mkdir -p out && tr a-z A-Z < in.txt > out/upper.txt && cat in.txt",
            "files": [["path": "in.txt", "blob": blob]],
        ])
        #expect(task["stdout"] as? String == "shared through PostgreSQL\n", "\(task)")
        let attempts = task["attempts"] as? [[String: Any]] ?? []
        let runnerWorker = try #require(attempts.first?["worker"] as? String)
        // Its output, read back through the first host: any host serves any task's files.
        try uploader.start()
        let id = try #require(task["id"] as? String)
        let (read, text) = try await uploader.request("GET", "/v1/tasks/\(id)/files/out/upper.txt")
        #expect(read == 200)
        #expect(text as? String == "SHARED THROUGH POSTGRESQL\n")
        let (_, workers) = try await uploader.request("GET", "/v1/workers")
        let ids = ((DaemonTests.json(workers)["workers"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        #expect(ids.count == 2 && ids.contains(runnerWorker))
    }
}
