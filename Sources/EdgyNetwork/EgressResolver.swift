import EdgyDNS
import EdgySystem
import Glibc
import Synchronization

/// The UDP server jails' DNS queries are redirected to: one thread, one socket on every address
/// of the daemon's network namespace (nftables lets only jails reach it). Each datagram is
/// parsed with every length checked, answered by `answer`, and sent back; a malformed one is
/// dropped or answered FORMERR, never trusted.
final class EgressResolver: Sendable {
    typealias Answer = @Sendable (DNSQuery, UInt32) -> [UInt8]

    private let socketFD: Int32
    private let stopFD: Int32
    private let thread = Mutex<pthread_t?>(nil)

    init(port: UInt16) throws(EgressSetupError) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EgressSetupError("resolver socket: \(errnoName(errno))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let why = errnoName(errno)
            close(fd)
            throw EgressSetupError("resolver cannot listen on UDP port \(port): \(why)")
        }
        guard let stop = try? makeEventFD() else {
            close(fd)
            throw EgressSetupError("resolver eventfd: \(errnoName(errno))")
        }
        socketFD = fd
        stopFD = stop
    }

    deinit {
        stop()
        closeDescriptor(socketFD)
        closeDescriptor(stopFD)
    }

    func start(_ answer: @escaping Answer) {
        let box = Unmanaged.passRetained(Loop(resolver: self, answer: answer))
        var created = pthread_t()
        let rc = pthread_create(&created, nil, { raw in
            let loop = Unmanaged<Loop>.fromOpaque(raw!).takeRetainedValue()
            loop.resolver.serve(loop.answer)
            return nil
        }, box.toOpaque())
        if rc == 0 { thread.withLock { $0 = created } } else { box.release() }
    }

    /// Ends the thread and waits for it. Idempotent.
    func stop() {
        guard let running = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) else { return }
        signalEventFD(stopFD)
        pthread_join(running, nil)
    }

    private final class Loop: Sendable {
        let resolver: EgressResolver
        let answer: Answer
        init(resolver: EgressResolver, answer: @escaping Answer) {
            self.resolver = resolver
            self.answer = answer
        }
    }

    private func serve(_ answer: Answer) {
        var buffer = [UInt8](repeating: 0, count: DNSQuery.maxDatagram)
        while true {
            var fds = [pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { return }
            if fds[1].revents != 0 { return }
            if fds[0].revents == 0 { continue }
            var peer = sockaddr_in()
            var peerLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let received = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(socketFD, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, &peerLength)
                    }
                }
            }
            guard received > 0, peer.sin_family == sa_family_t(AF_INET) else { continue }
            let reply: [UInt8]
            do {
                let query = try DNSQuery.parse(buffer[0..<received])
                reply = answer(query, UInt32(bigEndian: peer.sin_addr.s_addr))
            } catch .malformed {
                // The id is the first two bytes (there are at least 12): FORMERR tells the client.
                reply = Array(buffer[0..<2]) + [0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
            } catch {
                continue
            }
            _ = reply.withUnsafeBytes { raw in
                withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(socketFD, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, peerLength)
                    }
                }
            }
        }
    }
}
