import Foundation
import Glibc

/// A PEP 503 simple index of wheels and an npm registry of tarballs, both built by the test
/// itself and served over HTTP from a network namespace of the test's own (TEST-NET-3,
/// 203.0.113.0/24): what `pip install --index-url` and `npm install --registry` read, without
/// the internet. Every request path is logged.
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

    /// npm packages: name → (version, index.js)
    public static let npmPackages: [(name: String, version: String, module: String)] = [
        ("edgyleft", "1.0.0", "exports.hello = () => 'hello from edgyleft 1.0.0';\n"),
    ]

    public var npmURL: String { "http://\(Self.address):\(Self.port)/" }

    private static let npmBuilder = """
        import base64, hashlib, io, json, os, sys, tarfile
        root, name, version, module, base = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path, data in [("package/package.json", json.dumps({"name": name, "version": version, "main": "index.js"}).encode()),
                               ("package/index.js", module.encode())]:
                info = tarfile.TarInfo(path); info.size = len(data); info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        tgz = buf.getvalue()
        os.makedirs(os.path.join(root, "npm", "tarballs"), exist_ok=True)
        open(os.path.join(root, "npm", "tarballs", f"{name}-{version}.tgz"), "wb").write(tgz)
        doc_path = os.path.join(root, "npm", f"{name}.json")
        doc = json.load(open(doc_path)) if os.path.exists(doc_path) else {"name": name, "dist-tags": {}, "versions": {}}
        doc["versions"][version] = {"name": name, "version": version, "main": "index.js", "dist": {
            "tarball": f"{base}{name}/-/{name}-{version}.tgz", "shasum": hashlib.sha1(tgz).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}
        doc["dist-tags"]["latest"] = version
        json.dump(doc, open(doc_path, "w"))
        """

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

    /// `/simple/…` from the wheel tree, `….tgz` from the tarballs, anything else as an npm
    /// package document (`/NAME` → `npm/NAME.json`); 404 as JSON otherwise.
    private static let server = """
        import http.server, os, sys
        root, log = sys.argv[1], open(sys.argv[2], 'a', buffering=1)
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                log.write(path + "\\n")
                if path.startswith("/simple/"):
                    file = os.path.join(root, path.lstrip("/"))
                    if path.endswith("/"): file = os.path.join(file, "index.html")
                elif path.endswith(".tgz"):
                    file = os.path.join(root, "npm", "tarballs", os.path.basename(path))
                else:
                    file = os.path.join(root, "npm", path.strip("/") + ".json")
                file = os.path.realpath(file)
                if not file.startswith(os.path.realpath(root) + "/") or not os.path.isfile(file):
                    self.send_response(404); self.send_header("Content-Type", "application/json"); self.end_headers()
                    self.wfile.write(b'{"error":"not found"}'); return
                data = open(file, "rb").read()
                self.send_response(200)
                kind = "application/json" if file.endswith(".json") else "text/html" if file.endswith(".html") else "application/octet-stream"
                self.send_header("Content-Type", kind); self.send_header("Content-Length", str(len(data))); self.end_headers()
                self.wfile.write(data)
            def log_message(self, *args): pass
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
        for package in Self.npmPackages {
            let built = try BoundedProcess.run(
                "/usr/bin/python3", ["-c", Self.npmBuilder, root, package.name, package.version, package.module, npmURL],
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
        network.stop(process)
        process = nil
        network.shutdown()
        try? FileManager.default.removeItem(atPath: root)
    }
}
