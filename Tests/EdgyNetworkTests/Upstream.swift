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

    let network = TestNetwork(name: "edgyup", hostEnd: Upstream.hostEnd, addresses: [Upstream.server, Upstream.otherHost])
    let logPath = NSTemporaryDirectory() + "edgy-upstream-\(getpid() % 100_000).log"
    private var process: BoundedProcess?
    var link: String { network.link }
    var namespace: String { network.namespace }

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
        try network.start()
        unlink(logPath)
        process = try network.launch(["/usr/bin/python3", "-c", Self.serverScript, logPath])
        let deadline = ContinuousClock.now + .seconds(15)
        while !connections().contains("ready") {
            guard ContinuousClock.now < deadline else { throw TestNetworkError(description: "the upstream servers did not start") }
            usleep(20_000)
        }
    }

    /// Every line the servers logged: "ready", then "ADDRESS:PORT BYTES" per connection.
    func connections() -> [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func shutdown() {
        network.stop(process)
        process = nil
        network.shutdown()
    }
}
