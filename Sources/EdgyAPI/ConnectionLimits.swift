import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Open connections per client address, so that one client cannot hold every connection the
/// daemon accepts (`max_connections`; beyond it new ones wait in the kernel's backlog). Addresses
/// are keyed as `AuthFailureLimiter` keys them: IPv4 as is, IPv6 by its /64. A connection beyond
/// the limit is answered 429 `too_many_connections` if its first request arrives within a
/// second, and closed either way: it holds its place for at most that second.
public final class ConnectionsPerAddress: Sendable {
    /// Connections one address may hold open; 0 means no limit.
    public let limit: Int
    /// How long a refused connection is kept for its first request to be answered.
    static let refusalGrace: TimeAmount = .seconds(1)
    private let counts = Mutex<[String: Int]>([:])

    public init(limit: Int) {
        self.limit = limit
    }

    /// The handler that counts one connection; for `HTTP1Channel.Configuration.additionalChannelHandlers`.
    public func handler() -> any RemovableChannelHandler {
        ConnectionAdmission(table: self)
    }

    /// Counts a connection from `key`; false, and not counted, when `key` already holds `limit`.
    func admit(_ key: String) -> Bool {
        counts.withLock { counts in
            let open = counts[key] ?? 0
            if limit > 0 && open >= limit { return false }
            counts[key] = open + 1
            return true
        }
    }

    func release(_ key: String) {
        counts.withLock { counts in
            let open = (counts[key] ?? 1) - 1
            counts[key] = open > 0 ? open : nil
        }
    }
}

/// One connection's place in `ConnectionsPerAddress`, taken when the connection's pipeline is
/// built and given back when it closes.
final class ConnectionAdmission: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private let table: ConnectionsPerAddress
    /// The key this connection is counted under; nil when it was refused.
    private var admitted: String?
    private var refused = false
    private var answered = false
    private var closing: Scheduled<Void>?

    init(table: ConnectionsPerAddress) {
        self.table = table
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let key = AuthFailureLimiter.key(for: context.channel.remoteAddress?.ipAddress ?? "unknown")
        if table.admit(key) {
            admitted = key
            return
        }
        refused = true
        let channel = context.channel
        closing = context.eventLoop.scheduleTask(in: ConnectionsPerAddress.refusalGrace) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let admitted { table.release(admitted) }
        admitted = nil
        closing?.cancel()
        closing = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refused else {
            context.fireChannelRead(data)
            return
        }
        // The request never reaches the router: its first head is answered here, the rest dropped.
        guard case .head = unwrapInboundIn(data), !answered else { return }
        answered = true
        let error = APIError(
            .tooManyRequests, code: "too_many_connections",
            "this address holds \(table.limit) open connections, the most edgyd allows one address; close some or reuse them",
            headers: [.retryAfter: "1", .connection: "close"])
        let body = error.body
        var head = HTTPResponse(status: error.status, headerFields: error.responseHeaders)
        head.headerFields[.contentLength] = String(body.readableBytes)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
