import EdgyTestSupport
import Foundation
import Testing

/// Zip bombs against a real `edgyd`: one byte budget per request, checked while inflating, and a
/// gate on concurrent decodes keep the daemon's memory small however many arrive at once.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct UploadBombDaemonTests {
    /// What the request threads got back.
    final class Answers: @unchecked Sendable {
        // @unchecked because: every access holds `lock`.
        private let lock = NSLock()
        private var answers: [(status: Int, body: String)] = []
        func add(_ answer: (Int, String)) { lock.withLock { answers.append(answer) } }
        var all: [(status: Int, body: String)] { lock.withLock { answers } }
    }

    /// The daemon's peak resident set (VmHWM) in KiB.
    static func peakRSSKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    @Test func sixteenConcurrentZipBombRequestsAllGet413AndMemoryStaysSmall() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        // 16 archive parts (the most a request may carry), each 16 entries of exactly 1 MiB of zeros
        // in about 17 KB: 256 MiB per request, 4 GiB for all sixteen if nothing stopped them.
        let zip = ArchiveBuilder.zerosZip(entries: 16, entrySize: 1 << 20)
        let boundary = "bomb-boundary-7d1f"
        var body = Data()
        for i in 0..<16 {
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bomb\(i).zip\"\r\n\r\n".utf8)
            body += Data(zip)
            body += Data("\r\n".utf8)
        }
        body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"input\"\r\n\r\necho hi\r\n--\(boundary)--\r\n".utf8)
        let requestBody = body
        let before = try Self.peakRSSKiB(try #require(daemon.pid))

        // Sixteen requests at once, each on its own thread (the requests block while they wait).
        let answers = Answers()
        let group = DispatchGroup()
        for _ in 0..<16 {
            DispatchQueue.global().async(group: group) {
                let answer = try? daemon.syncRequest(
                    "POST", "/v1/tasks", body: requestBody, contentType: "multipart/form-data; boundary=\(boundary)")
                answers.add(answer.map { ($0.0, "\($0.1 ?? "")") } ?? (0, "no answer"))
            }
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        let all = answers.all
        #expect(all.count == 16)
        #expect(all.allSatisfy { $0.status == 413 }, "\(all)")
        #expect(all.allSatisfy { $0.body.contains("the upload unpacks to more than 16777216 bytes") }, "\(all)")

        let peak = try Self.peakRSSKiB(try #require(daemon.pid))
        #expect(peak < 256 * 1024, "edgyd peaked at \(peak / 1024) MiB (\(before / 1024) MiB before the bombs)")
        let (health, _) = try daemon.syncRequest("GET", "/readyz", authorized: false)
        #expect(health == 200)
    }
}
