import NIOPosix

/// Work whose cost grows with a client's bytes (decoding a body, hashing a blob). edgyd runs all
/// its Swift tasks on a few event loops (`api_threads`), so one client's large body decoded there
/// would hold every other request: a 14 MB JSON body takes about 90 ms. Small inputs, the common
/// case, run where the request runs; larger ones on NIO's pool of blocking threads.
enum BlockingWork {
    /// Inputs up to this size are handled inline.
    static let inlineBytes = 64 << 10

    static func run<T: Sendable>(bytes: Int, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        if bytes <= inlineBytes { return try body() }
        return try await NIOThreadPool.singleton.runIfActive(body)
    }
}
