import Foundation
import Synchronization

/// Counts failed authentications per client in a fixed window; once a client has failed `limit`
/// times in the window, its further failures are answered 429 (with `Retry-After`) until the window
/// ends. Only failures are counted and refused: a request whose token is valid always goes through,
/// whoever else failed from the same address.
///
/// Clients are keyed by IPv4 address, or by the /64 of an IPv6 address (one host usually owns a
/// whole /64, so keying by address would let it pick a fresh one per guess). The table holds at most
/// `maxEntries` windows; past that the oldest are forgotten first, so a scan from many addresses
/// costs bounded memory.
final class AuthFailureLimiter: Sendable {
    private struct Window {
        var start: ContinuousClock.Instant
        var failures: Int
    }

    private struct Table {
        var windows: [String: Window] = [:]
        /// Keys in the order their windows started; an entry whose start no longer matches the
        /// window in `windows` is stale and skipped.
        var order: [(key: String, start: ContinuousClock.Instant)] = []
        var head = 0
    }

    let limit: Int
    let window: Duration
    let maxEntries: Int
    private let table = Mutex(Table())

    init(limit: Int, window: Duration, maxEntries: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.maxEntries = max(1, maxEntries)
    }

    /// How many clients the table remembers now.
    var count: Int { table.withLock { $0.windows.count } }

    /// Seconds until `client` may fail again without being refused, or nil when it is not limited.
    func retryAfter(_ client: String, now: ContinuousClock.Instant = .now) -> Int? {
        guard limit > 0 else { return nil }
        let key = Self.key(for: client)
        return table.withLock { table -> Int? in
            guard let current = table.windows[key], now - current.start < window else { return nil }
            guard current.failures >= limit else { return nil }
            let left = window - (now - current.start)
            return max(1, Int(left.components.seconds) + (left.components.attoseconds > 0 ? 1 : 0))
        }
    }

    /// Records a failure; true when this failure reached the limit (the moment worth logging).
    @discardableResult
    func recordFailure(_ client: String, now: ContinuousClock.Instant = .now) -> Bool {
        guard limit > 0 else { return false }
        let key = Self.key(for: client)
        return table.withLock { table -> Bool in
            if let current = table.windows[key], now - current.start < window {
                table.windows[key]?.failures = current.failures + 1
                return current.failures + 1 == limit
            }
            table.windows.removeValue(forKey: key)
            evict(&table, now: now)
            table.windows[key] = Window(start: now, failures: 1)
            table.order.append((key, now))
            return limit == 1
        }
    }

    /// Forgets finished windows, then the oldest ones until a new one fits under `maxEntries`.
    private func evict(_ table: inout Table, now: ContinuousClock.Instant) {
        while table.head < table.order.count {
            let (key, start) = table.order[table.head]
            let stale = table.windows[key]?.start != start
            guard stale || now - start >= window || table.windows.count >= maxEntries else { break }
            if !stale { table.windows.removeValue(forKey: key) }
            table.head += 1
        }
        if table.head > 1024 && table.head * 2 > table.order.count {
            table.order.removeFirst(table.head)
            table.head = 0
        }
        // Clock readings out of order can leave stale entries behind live ones; rebuild then.
        if table.order.count - table.head > 2 * maxEntries {
            table.order = table.windows.map { ($0.key, $0.value.start) }.sorted { $0.start < $1.start }
            table.head = 0
        }
    }

    /// The limiter's key for a client address: IPv4 as is (also when mapped into IPv6), IPv6 by its
    /// /64 prefix, anything unparsable as is.
    static func key(for address: String) -> String {
        guard address.contains(":") else { return address }
        var bytes = in6_addr()
        let parsed = address.split(separator: "%", maxSplits: 1).first.map { String($0) } ?? address
        guard inet_pton(AF_INET6, parsed, &bytes) == 1 else { return address }
        let octets = withUnsafeBytes(of: &bytes) { Array($0) }
        guard octets.count == 16 else { return address }
        if octets[0..<10].allSatisfy({ $0 == 0 }) && octets[10] == 0xff && octets[11] == 0xff {
            return octets[12..<16].map { String($0) }.joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(octets[$0]) << 8 | UInt16(octets[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
