import AsyncHTTPClient
import Crypto
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// How webhooks are delivered.
public struct WebhookConfiguration: Sendable {
    /// Where callbacks may go besides public addresses (`webhook_allow`).
    public var allow = CallbackAllowlist()
    /// Tries per delivery, the first included (`webhook_max_attempts`).
    public var maxAttempts = 6
    /// The wait before the second try; each later wait doubles, with ±50% jitter, up to `maxDelay`.
    public var retryBase: Duration = .seconds(5)
    public var maxDelay: Duration = .seconds(3600)
    /// One try: connect, send, and the receiver's answer.
    public var timeout: Duration = .seconds(10)
    /// How often the store is asked for due deliveries.
    public var pollInterval: Duration = .milliseconds(500)
    /// Deliveries in flight at once.
    public var concurrency = 8

    public init() {}
}

/// Posts finished tasks to their `callback_url`, signed, retried with exponential backoff and
/// jitter. It runs beside the workers and never in their way: a worker only finishes its task;
/// the delivery is a row the store kept with the task, which this service (on any host sharing the
/// store, one at a time through the row's lease) picks up once the task has finished, so a
/// restart loses nothing.
public struct WebhookDeliverer: Service {
    let store: any TaskStore & DeliveryStore
    let encode: @Sendable (TaskRecord) throws -> [UInt8]
    let configuration: WebhookConfiguration
    let logger: Logger

    public init(store: any TaskStore & DeliveryStore, configuration: WebhookConfiguration, logger: Logger,
                encode: @escaping @Sendable (TaskRecord) throws -> [UInt8]) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.encode = encode
    }

    public func run() async throws {
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: .init(
            redirectConfiguration: .disallow, timeout: .init(connect: .init(configuration.timeout), read: .init(configuration.timeout))))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let delivered = await sweep(client: client)
            if delivered == 0 { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: configuration.pollInterval) } }
        }
        try? await client.shutdown()
    }

    /// One pass: claims due deliveries and makes one try of each. Returns how many it tried.
    func sweep(client: HTTPClient, now: Date = Date()) async -> Int {
        let lease = configuration.timeout * 3 + .seconds(5)
        let due: [WebhookDelivery]
        do {
            due = try await store.claimDeliveries(now: now, leaseUntil: now.addingTimeInterval(lease.seconds), limit: configuration.concurrency)
        } catch {
            logger.error("cannot read due webhook deliveries", metadata: ["error": "\(error)"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for delivery in due { group.addTask { await self.attempt(delivery, client: client) } }
        }
        return due.count
    }

    /// One try of `delivery`, recorded.
    func attempt(_ delivery: WebhookDelivery, client: HTTPClient) async {
        let number = delivery.attempts.count + 1
        let started = Date()
        let clock = ContinuousClock.now
        var statusCode: Int?
        var failure: String?
        var permanent = false
        do {
            guard let task = try await store.taskSummary(id: delivery.taskID) else { return }
            let body = try encode(task)
            let url = try CallbackURL.parse(delivery.url)
            if let why = configuration.allow.refusal(url) {
                (failure, permanent) = ("refused: \(why)", true)
            } else {
                statusCode = try await post(body, to: url, delivery: delivery, number: number, client: client)
                if let statusCode, !(200..<300).contains(statusCode) { failure = "HTTP \(statusCode)" }
            }
        } catch let error as Refused {
            (failure, permanent) = ("refused: \(error.reason)", true)
        } catch let error as CallbackURLError {
            (failure, permanent) = ("refused: \(error.message)", true)
        } catch {
            failure = "\(error)"
        }
        let attempt = DeliveryAttempt(number: number, at: started, statusCode: statusCode, error: failure,
                                      durationMs: Int((ContinuousClock.now - clock).seconds * 1000))
        let state: DeliveryState
        var next: Date?
        if failure == nil {
            state = .delivered
        } else if permanent || number >= configuration.maxAttempts {
            state = .failed
        } else {
            state = .pending
            next = Date().addingTimeInterval(Self.delay(after: number, configuration).seconds)
        }
        Counter(label: "edgy_webhook_tries_total", dimensions: [("result", failure == nil ? "delivered" : permanent ? "refused" : "failed")]).increment()
        logger.log(level: failure == nil ? .debug : .notice, "webhook try", metadata: [
            "task": "\(delivery.taskID)", "attempt": "\(number)", "state": "\(state.rawValue)", "error": "\(failure ?? "")",
        ])
        do {
            try await store.recordDelivery(taskID: delivery.taskID, attempt: attempt, state: state, nextAttemptAt: next)
        } catch {
            logger.error("cannot record a webhook try", metadata: ["task": "\(delivery.taskID)", "error": "\(error)"])
        }
    }

    /// The wait after try `number`: `retryBase × 2^(number−1)`, at most `maxDelay`, times a
    /// uniform jitter in [0.5, 1.5) so that receivers that failed together are not retried together.
    static func delay(after number: Int, _ configuration: WebhookConfiguration) -> Duration {
        let base = configuration.retryBase.seconds * pow(2, Double(min(number - 1, 30)))
        return .milliseconds(Int(min(base, configuration.maxDelay.seconds) * Double.random(in: 0.5..<1.5) * 1000))
    }

    struct Refused: Error {
        let reason: String
    }

    /// POSTs `body`; the receiver's status. A name is resolved here and every address checked: a
    /// plain-HTTP request then goes to the checked address (the name in `Host`), so a second
    /// answer cannot send it elsewhere; HTTPS connects by name (its certificate is for the name).
    private func post(_ body: [UInt8], to url: CallbackURL, delivery: WebhookDelivery, number: Int, client: HTTPClient) async throws -> Int {
        var target = url.text
        if IPv4Network.parseAddress(url.host) == nil && !url.host.contains(":") {
            let addresses = try await Self.resolve(url.host, port: url.port)
            guard !addresses.isEmpty else { throw Refused(reason: "\(url.host) does not resolve") }
            for address in addresses {
                if let why = configuration.allow.refusal(address: address, host: url.host) { throw Refused(reason: "\(url.host): \(why)") }
            }
            if !url.secure, let components = URLComponents(string: url.text) {
                var pinned = components
                // Every address was checked; IPv4 first, as receivers on dual names most often listen there.
                pinned.host = Self.literal(addresses.first { $0.count == 4 } ?? addresses[0])
                target = pinned.string ?? url.text
            }
        }
        let timestamp = String(Int(Date().timeIntervalSince1970))
        var request = HTTPClientRequest(url: target)
        request.method = .POST
        request.headers.add(name: "Host", value: url.port == (url.secure ? 443 : 80) ? url.host : "\(url.host):\(url.port)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "edgyd")
        request.headers.add(name: "Edgy-Webhook-Id", value: delivery.taskID.uuidString.lowercased())
        request.headers.add(name: "Edgy-Webhook-Attempt", value: String(number))
        request.headers.add(name: "Edgy-Webhook-Timestamp", value: timestamp)
        request.headers.add(name: "Edgy-Webhook-Signature", value: Self.signature(secret: delivery.secret, timestamp: timestamp, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .init(configuration.timeout))
        // The answer's body is not read beyond a little: a receiver cannot make edgyd hold much.
        _ = try? await response.body.collect(upTo: 64 << 10)
        return Int(response.status.code)
    }

    /// `v1=` and the hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of "TIMESTAMP.BODY".
    public static func signature(secret: String, timestamp: String, body: [UInt8]) -> String {
        var message = Array(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message += body
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return "v1=" + BlobDigest.hex(code)
    }

    /// The addresses `host` resolves to (4 or 16 bytes each), off the cooperative pool.
    static func resolve(_ host: String, port: Int) async throws -> [[UInt8]] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return [] }
            defer { freeaddrinfo(first) }
            var addresses: [[UInt8]] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                if let address = entry.pointee.ai_addr {
                    switch Int32(entry.pointee.ai_family) {
                    case AF_INET:
                        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                            addresses.append(withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) })
                        }
                    case AF_INET6:
                        address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                            addresses.append(withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) })
                        }
                    default: break
                    }
                }
                cursor = entry.pointee.ai_next
            }
            return addresses
        }
    }

    static func literal(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, address, &text, socklen_t(text.count))
        return "[" + String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "]"
    }
}
