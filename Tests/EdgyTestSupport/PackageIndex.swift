import Foundation
import Glibc

/// A PEP 503 simple index of wheels the test builds itself, served over HTTP from a network
/// namespace of the test's own (TEST-NET-3, 203.0.113.0/24): what `pip install --index-url`
/// reads, without the internet. Every request path is logged.
public final class PackageIndex: @unchecked Sendable {
    // @unchecked because: tests start, use and shut it down from one task.
    public static let address = "203.0.113.10"
    public static let port = 8080
    /// A port nothing listens on: an unreachable registry.
    public static let closedPort = 8099

    public let network = TestNetwork(name: "edgypi", hostEnd: "203.0.113.1", addresses: [PackageIndex.address])
    public let root = NSTemporaryDirectory() + "edgy-index-\(getpid() % 100_000)"
    var logPath: String { root + ".log" }
    private var process: BoundedProcess?

    public var url: String { "http://\(Self.address):\(Self.port)/simple/" }
    public var unreachableURL: String { "http://\(Self.address):\(Self.closedPort)/simple/" }

    /// name → (version, module source, extra file bytes)
    public static let packages: [(name: String, version: String, module: String, padding: Int)] = [
        ("edgytoy", "1.0", "def hello():\n    return 'hello from edgytoy 1.0'\n", 0),
        ("edgytoy", "2.0", "def hello():\n    return 'hello from edgytoy 2.0'\n", 0),
        ("edgybig", "1.0", "SIZE = 200000\n", 200_000),
    ]

    private static let builder = """
        import base64, hashlib, os, sys, zipfile
        root, name, version, module, padding = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        files = {f"{name}/__init__.py": module.encode()}
        if padding: files[f"{name}/data.bin"] = bytes(i % 251 for i in range(padding))
        info = f"{name}-{version}.dist-info"
        files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode()
        files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: edgy-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}" for p, d in files.items()]
        files[f"{info}/RECORD"] = ("\\n".join(record + [f"{info}/RECORD,,"]) + "\\n").encode()
        directory = os.path.join(root, "simple", name)
        os.makedirs(directory, exist_ok=True)
        wheel = f"{name}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(directory, wheel), "w") as z:
            for p, d in files.items(): z.writestr(p, d)
        wheels = sorted(f for f in os.listdir(directory) if f.endswith(".whl"))
        with open(os.path.join(directory, "index.html"), "w") as f:
            f.write("<html><body>" + "".join(f'<a href="{w}">{w}</a>' for w in wheels) + "</body></html>")
        """

    private static let server = """
        import http.server, sys
        root, log = sys.argv[1], open(sys.argv[2], 'a', buffering=1)
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k): super().__init__(*a, directory=root, **k)
            def log_message(self, fmt, *args): log.write(self.path + "\\n")
        server = http.server.ThreadingHTTPServer(('0.0.0.0', int(sys.argv[3])), Handler)
        log.write("ready\\n")
        server.serve_forever()
        """

    public init() {}

    public func start() throws {
        shutdown()
        try FileManager.default.createDirectory(atPath: root + "/simple", withIntermediateDirectories: true)
        for package in Self.packages {
            let built = try BoundedProcess.run(
                "/usr/bin/python3", ["-c", Self.builder, root, package.name, package.version, package.module, String(package.padding)],
                timeout: .seconds(30))
            guard built.termination.status == 0 else { throw TestNetworkError(description: "building \(package.name): \(built.stderr)") }
        }
        try network.start()
        unlink(logPath)
        process = try network.launch(["/usr/bin/python3", "-c", Self.server, root, logPath, String(Self.port)])
        let deadline = ContinuousClock.now + .seconds(15)
        while !requests().contains("ready") {
            guard ContinuousClock.now < deadline else { throw TestNetworkError(description: "the package index did not start") }
            usleep(20_000)
        }
    }

    /// "ready", then each request's path.
    public func requests() -> [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func shutdown() {
        if let process {
            kill(-process.pid, SIGKILL)
            _ = try? process.wait(timeout: .seconds(5))
            process.removeOutputFiles()
        }
        process = nil
        network.shutdown()
        try? FileManager.default.removeItem(atPath: root)
    }
}
