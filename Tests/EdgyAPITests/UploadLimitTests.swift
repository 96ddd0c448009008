import EdgyTestSupport
import Foundation
import Glibc
import NIOCore
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import EdgyAPI

/// Hostile uploads over HTTP: a malformed archive is a 400 naming it, and one byte budget, an
/// archive count and a decode gate bound what one request (and all of them) may unpack.
@Suite struct UploadLimitTests {
    func post(_ harness: Harness, _ files: [(String, [UInt8])]) async throws -> TestResponse {
        var form = MultipartForm()
        for (name, bytes) in files { form.file(filename: name, bytes) }
        form.field("input", "echo hi")
        let body = form.finished()
        return try await harness.test { client in try await client.multipart(body) }
    }

    @Test func aTarWithANegativeSizeIs400NamingTheEntry() async throws {
        let harness = try await Harness()
        let tar = ArchiveBuilder.tarHeader(name: "a.txt", size: "-0000000001") + ArchiveBuilder.tarEnd
        let response = try await post(harness, [("bad.tar", tar)])
        #expect(response.status == .badRequest)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        let error = try response.error
        #expect(error.code == "invalid_archive")
        #expect(error.field == "file:bad.tar!a.txt")
        #expect(error.message == "archive bad.tar: tar entry a.txt has a bad size field")
        #expect(try await harness.taskCount() == 0)
    }

    @Test func zipBombsShareOneBudgetAcrossParts() async throws {
        // Each zip is 16 entries of exactly 1 MiB of zeros (about 17 KB): at the ratio floor, so only
        // the request's budget (16 MiB) stops the second copy, at its first entry. The task may hold
        // more, so what refuses the second copy is the budget, while inflating.
        let harness = try await Harness(config: APIConfiguration(maxTaskBytes: 32 << 20, maxArchiveBytes: 16 << 20, maxUploadBytes: 16 << 20))
        let zip = ArchiveBuilder.zerosZip(entries: 16, entrySize: 1 << 20)
        let one = try await post(harness, [("a.zip", zip)])
        #expect(one.status == .created)
        let two = try await post(harness, [("a.zip", zip), ("b.zip", zip)])
        #expect(two.status == .contentTooLarge)
        #expect(try two.error.field == "file:b.zip!zeros0.bin")
        #expect(try two.error.message == "archive b.zip: the upload unpacks to more than 16777216 bytes")
    }

    @Test func plainFilesDrawOnTheSameBudget() async throws {
        let harness = try await Harness(config: APIConfiguration(maxUploadBytes: 1000))
        let response = try await post(harness, [("a.txt", [UInt8](repeating: 1, count: 600)), ("b.txt", [UInt8](repeating: 2, count: 600))])
        #expect(response.status == .contentTooLarge)
        #expect(try response.error.field == "file:b.txt")
    }

    @Test func archivePartsPerRequestAreCapped() async throws {
        let harness = try await Harness(config: APIConfiguration(maxArchivesPerRequest: 3))
        let tar = ArchiveBuilder.tarEnd
        let four = try await post(harness, (0..<4).map { ("t\($0).tar", tar) })
        #expect(four.status == .contentTooLarge)
        #expect(try four.error.field == "files")
        let three = try await post(harness, (0..<3).map { ("t\($0).tar", tar) })
        #expect(three.status == .created)
    }

    @Test func theGateBoundsConcurrentDecodesAndTimesOut() async throws {
        let gate = UploadGate(permits: 1)
        #expect(await gate.acquire(wait: .zero))
        let start = ContinuousClock.now
        #expect(await gate.acquire(wait: .milliseconds(100)) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        // A waiter gets the permit the moment it is released.
        async let waiter = gate.acquire(wait: .seconds(10))
        try await Task.sleep(for: .milliseconds(50))
        gate.release()
        #expect(await waiter)
        gate.release()
        #expect(await gate.acquire(wait: .zero))
    }

    @Test func aBusyGateAnswers503WithRetryAfter() async throws {
        let gate = UploadGate(permits: 1)
        #expect(await gate.acquire(wait: .zero))
        await #expect {
            try await gate.run(wait: .milliseconds(20), retryAfter: 7) { 1 }
        } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == .serviceUnavailable && error.headers[.retryAfter] == "7"
        }
    }
}

/// Blob uploads hold their whole body (up to `maxBlobBytes`) in memory, so only so many are read at
/// once: a client that trickles a body holds its turn, and the next upload is told to come back.
@Suite struct BlobUploadGateTests {
    @Test func aTrickledUploadHoldsItsTurnAndTheNextIsAnswered503() async throws {
        var config = APIConfiguration(decodeWaitLimit: .milliseconds(100))
        config.maxConcurrentBlobUploads = 1
        let harness = try await Harness(config: config)
        try await harness.test(.live) { client in
            let port = try #require(client.port)
            // A raw connection that sends its headers and half its body, then waits.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            let head = "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Harness.submitter)\r\nContent-Length: 1000\r\n\r\n"
            let partial = Array(head.utf8) + [UInt8](repeating: 1, count: 500)
            #expect(partial.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == partial.count)
            // Give the server a moment to take the first upload's turn.
            var answered: HTTPResponse.Status = .ok
            for _ in 0..<50 {
                let response = try await client.execute(
                    uri: "/v1/blobs", method: .post, headers: headers(Harness.submitter), body: ByteBuffer(string: "second"))
                answered = response.status
                if answered == .serviceUnavailable {
                    #expect(response.headers[.retryAfter] != nil)
                    #expect(try response.error.code == "busy")
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(answered == .serviceUnavailable)
            // The first upload finishes and frees its turn: the next one is stored.
            let rest = [UInt8](repeating: 1, count: 500)
            #expect(rest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == rest.count)
            var reply = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &reply, reply.count)
            #expect(String(decoding: reply.prefix(max(n, 0)), as: UTF8.self).hasPrefix("HTTP/1.1 201"))
            let after = try await client.execute(uri: "/v1/blobs", method: .post, headers: headers(Harness.submitter), body: ByteBuffer(string: "third"))
            #expect(after.status == .created)
        }
    }
}
