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
            let connection = try RawConnection(port: port)
            let head = "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Harness.submitter)\r\nContent-Length: 1000\r\n\r\n"
            #expect(connection.send(Array(head.utf8) + [UInt8](repeating: 1, count: 500)))
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
            #expect(connection.send([UInt8](repeating: 1, count: 500)))
            #expect(connection.receive(for: .seconds(10), stopAfter: "}").text.hasPrefix("HTTP/1.1 201"))
            let after = try await client.execute(uri: "/v1/blobs", method: .post, headers: headers(Harness.submitter), body: ByteBuffer(string: "third"))
            #expect(after.status == .created)
        }
    }
}

/// A blob upload trickled in loses its turn: 408 once it falls below the minimum rate, and the
/// next upload is read.
@Suite struct TrickledBlobUploadTests {
    @Test func aTrickledUploadIsCutOffAndTheNextIsStored() async throws {
        var config = APIConfiguration(decodeWaitLimit: .milliseconds(100))
        config.maxConcurrentBlobUploads = 1
        config.bodyRateGrace = .milliseconds(300)
        config.minBodyBytesPerSecond = 64 << 10
        let harness = try await Harness(config: config)
        try await harness.test(.live) { client in
            let port = try #require(client.port)
            let trickle = try RawConnection(port: port)
            trickle.send("POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Harness.submitter)\r\nContent-Length: 100000\r\n\r\n")
            trickle.send([UInt8](repeating: 1, count: 100))
            try await Task.sleep(for: .milliseconds(500))
            trickle.send([UInt8](repeating: 1, count: 100))
            let answer = trickle.receive(for: .seconds(10), stopAfter: "}}")
            #expect(RawConnection.status(of: answer.text) == 408, "\(answer.text)")
            #expect(answer.text.contains("\"too_slow\""), "\(answer.text)")
            let next = try await client.execute(uri: "/v1/blobs", method: .post, headers: headers(Harness.submitter), body: ByteBuffer(string: "next"))
            #expect(next.status == .created)
        }
    }
}

/// The gate counts weighted permits strictly in order: one byte of request bodies is one permit.
@Suite struct WeightedGateTests {
    @Test func largeAsksWaitInLineAndSmallerOnesBehindThemWaitToo() async throws {
        let gate = UploadGate(permits: 100)
        #expect(await gate.acquire(60, wait: .zero))
        async let large = gate.acquire(60, wait: .seconds(10))
        try await Task.sleep(for: .milliseconds(50))
        // 10 would fit in the 40 left, but they queue behind the 60 rather than overtake them.
        #expect(await gate.acquire(10, wait: .milliseconds(50)) == false)
        gate.release(60)
        #expect(await large)
        // An ask beyond the whole gate is refused at once, without waiting; the 40 left are there.
        let start = ContinuousClock.now
        #expect(await gate.acquire(101, wait: .seconds(10)) == false)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(await gate.acquire(40, wait: .zero))
        #expect(await gate.acquire(1, wait: .zero) == false)
    }

    @Test func aLargeAskThatGivesUpLetsTheSmallerOnesBehindItIn() async throws {
        let gate = UploadGate(permits: 100)
        #expect(await gate.acquire(50, wait: .zero))
        async let large = gate.acquire(80, wait: .milliseconds(100))
        try await Task.sleep(for: .milliseconds(30))
        async let small = gate.acquire(40, wait: .seconds(10))
        #expect(await large == false)
        #expect(await small)
    }
}

/// Create-task bodies share one byte budget across connections (`maxBufferedRequestBytes`): a body
/// that finds no room is told 503 `busy`, and its share comes back when its connection goes.
@Suite struct BodyBudgetTests {
    func create(_ client: some TestClientProtocol, bytes: Int, token: String = Harness.submitter) async throws -> TestResponse {
        let filler = String(repeating: "x", count: max(0, bytes - 60))
        let body = #"{"name":"n","input":"echo \#(filler)"}"#
        return try await client.execute(
            uri: "/v1/tasks", method: .post, headers: headers(token, contentType: "application/json"),
            body: ByteBuffer(string: body))
    }

    /// A raw connection that declares `length` bytes of a create-task body, sends a few, and waits.
    func holdBody(port: Int, length: Int, token: String = Harness.submitter) throws -> RawConnection {
        let connection = try RawConnection(port: port)
        connection.send("POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(length)\r\n\r\n{\"name\":")
        return connection
    }

    /// Retries `create` while it answers anything but `status` (the holder's head may not have
    /// been read yet), for up to a second.
    func firstAnswer(_ status: HTTPResponse.Status, _ create: () async throws -> TestResponse) async throws -> TestResponse? {
        for _ in 0..<50 {
            let response = try await create()
            if response.status == status { return response }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test func oneTenantsBodiesHoldOnlyItsPartOfTheBudget() async throws {
        var config = APIConfiguration(maxTaskBytes: 48 << 10, decodeWaitLimit: .milliseconds(100))
        config.maxBufferedRequestBytes = 4 * config.maxRequestBytes
        config.maxBufferedRequestBytesPerTenant = 0  // raised to one request's limit
        let perTenant = config.maxRequestBytes
        let harness = try await Harness(config: config)
        try await harness.test(.live) { client in
            let port = try #require(client.port)
            let holder = try holdBody(port: port, length: perTenant - 20_000)
            let refused = try #require(
                try await firstAnswer(.tooManyRequests) { try await create(client, bytes: 30_000) },
                "a tenant's second body was read past its part of the budget")
            #expect(try refused.error.code == "too_many_bodies")
            #expect(refused.headers[.retryAfter] != nil)
            // Another tenant's body is read: the budget has room, only the first tenant's part is full.
            #expect(try await create(client, bytes: 30_000, token: Harness.otherTenant).status == .created)
            withExtendedLifetime(holder) {}
        }
    }

    @Test func aBodyTrickledInIsCutOff() async throws {
        var config = APIConfiguration(maxTaskBytes: 48 << 10, decodeWaitLimit: .milliseconds(100))
        config.bodyRateGrace = .milliseconds(300)
        config.minBodyBytesPerSecond = 64 << 10
        let harness = try await Harness(config: config)
        try await harness.test(.live) { client in
            let port = try #require(client.port)
            let trickle = try holdBody(port: port, length: 100_000)
            try await Task.sleep(for: .milliseconds(500))
            trickle.send(String(repeating: "x", count: 100))
            let answer = trickle.receive(for: .seconds(10), stopAfter: "}}")
            #expect(RawConnection.status(of: answer.text) == 408, "\(answer.text)")
            #expect(answer.text.contains("\"too_slow\""), "\(answer.text)")
            // A body that arrives at once is not affected.
            #expect(try await create(client, bytes: 30_000).status == .created)
        }
    }

    @Test func aBodyThatFindsNoRoomIs503AndFitsOnceTheHolderCloses() async throws {
        // One request's limit is 64 KiB × 4/3 + 1 MiB; the budget cannot be smaller than that.
        var config = APIConfiguration(maxTaskBytes: 48 << 10, decodeWaitLimit: .milliseconds(100))
        config.maxBufferedRequestBytes = 0
        let budget = config.maxRequestBytes
        let harness = try await Harness(config: config)
        try await harness.test(.live) { client in
            let port = try #require(client.port)
            // Declares all but 20 KB of the budget, sends a little of it, and waits.
            var holder: RawConnection? = try holdBody(port: port, length: budget - 20_000)
            defer { withExtendedLifetime(holder) {} }
            let busy = try #require(
                try await firstAnswer(.serviceUnavailable) { try await create(client, bytes: 30_000) },
                "a 30 KB body was read while all but 20 KB of the budget was held")
            #expect(try busy.error.code == "busy")
            #expect(busy.headers[.retryAfter] != nil)
            // The budget counts bytes, not requests: a small body still fits beside the holder.
            #expect(try await create(client, bytes: 500).status == .created)

            holder = nil
            var status: HTTPResponse.Status = .serviceUnavailable
            for _ in 0..<100 where status != .created {
                status = try await create(client, bytes: 30_000).status
                if status != .created { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(status == .created, "the closed connection's share was given back")

            // A chunked body (no Content-Length) is counted as it arrives.
            let chunked = try RawConnection(port: port)
            let json = #"{"name":"chunked","input":"echo hi"}"#
            let half = json.utf8.count / 2
            let first = String(json.prefix(half)), second = String(json.dropFirst(half))
            chunked.send("POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Harness.submitter)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(first.utf8.count, radix: 16) + "\r\n" + first + "\r\n"
                + String(second.utf8.count, radix: 16) + "\r\n" + second + "\r\n0\r\n\r\n")
            let answer = chunked.receive(for: .seconds(10), stopAfter: "}")
            #expect(RawConnection.status(of: answer.text) == 201, "\(answer.text)")
        }
    }
}
