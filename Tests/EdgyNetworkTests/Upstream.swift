import EdgyTestSupport
import Foundation
import Glibc

/// The far side of egress tests: a network namespace joined to the host by a veth pair, holding
/// two addresses of TEST-NET-2 (198.51.100.0/24, never routed on the internet) and TCP servers
/// on ports 443, 8000 and 8001 that log every connection and the bytes it sent. The host routes the
/// range to the pair, so no test packet leaves the machine; `start` checks that route first.
final class Upstream: @unchecked Sendable {
    static let server = "198.51.100.10"
    static let otherHost = "198.51.100.11"
    static let hostEnd = "198.51.100.1"
    static let replyBytes = 5000

    let namespace: String
    let link: String
    let logPath: String
    private var process: BoundedProcess?

    init() {
        let tag = "\(getpid() % 100_000)"
        namespace = "edgyup\(tag)"
        link = "eup\(tag)"
        logPath = NSTemporaryDirectory() + "edgy-upstream-\(tag).log"
    }

    private static let serverScript = """
        import socket, sys, threading
        log = open(sys.argv[1], 'a', buffering=1)
        def handle(c):
            c.settimeout(10); n = 0
            try:
                while True:
                    b = c.recv(65536)
                    if not b: break
                    n += len(b)
                c.sendall(b'y' * \(replyBytes))
            except OSError:
                pass
            finally:
                a = c.getsockname(); log.write(f"{a[0]}:{a[1]} {n}\\n"); c.close()
        def serve(port):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('0.0.0.0', port)); s.listen(64)
            while True:
                c, _ = s.accept()
                threading.Thread(target=handle, args=(c,), daemon=True).start()
        for p in (443, 8000, 8001): threading.Thread(target=serve, args=(p,), daemon=True).start()
        log.write("ready\\n")
        threading.Event().wait()
        """

    func start() throws {
        shutdown()
        try Self.ip(["netns", "add", namespace])
        try Self.ip(["link", "add", link, "type", "veth", "peer", "name", "up0", "netns", namespace])
        try Self.ip(["addr", "add", "\(Self.hostEnd)/24", "dev", link])
        try Self.ip(["link", "set", link, "up"])
        for address in [Self.server, Self.otherHost] {
            try Self.ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", "up0"])
        }
        try Self.ip(["-n", namespace, "link", "set", "up0", "up"])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        let route = try BoundedProcess.run("/usr/sbin/ip", ["route", "get", Self.server], timeout: .seconds(10))
        guard route.stdout.contains("dev \(link)") else {
            throw UpstreamError(description: "198.51.100.0/24 is not routed to \(link): \(route.stdout)")
        }
        unlink(logPath)
        process = try BoundedProcess("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/bin/python3", "-c", Self.serverScript, logPath])
        let deadline = ContinuousClock.now + .seconds(15)
        while !connections().contains("ready") {
            guard ContinuousClock.now < deadline else { throw UpstreamError(description: "the upstream servers did not start") }
            usleep(20_000)
        }
    }

    /// Every line the servers logged: "ready", then "ADDRESS:PORT BYTES" per connection.
    func connections() -> [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func shutdown() {
        if let process {
            kill(-process.pid, SIGKILL)
            _ = try? process.wait(timeout: .seconds(5))
            process.removeOutputFiles()
        }
        process = nil
        _ = try? BoundedProcess.run("/usr/sbin/ip", ["netns", "del", namespace], timeout: .seconds(10))
        _ = try? BoundedProcess.run("/usr/sbin/ip", ["link", "del", link], timeout: .seconds(10))
    }

    static func ip(_ arguments: [String]) throws {
        let result = try BoundedProcess.run("/usr/sbin/ip", arguments, timeout: .seconds(10))
        guard result.termination.status == 0 else {
            throw UpstreamError(description: "ip \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }
}

struct UpstreamError: Error, CustomStringConvertible {
    var description: String
}
