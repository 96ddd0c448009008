import EdgyTestSupport
import Foundation
import Glibc
import Testing

/// edgyd with a registry in `dependency_registries`: a task's `dependencies` list or
/// `requirements.txt` is installed once into a layer, the report says so, the admin API lists and
/// removes layers, and manifests that point anywhere but the registry are refused at submission.
@Suite(.tags(.root), .requiresRoot, .serialized, .timeLimit(.minutes(4)))
struct DependencyDaemonTests {
    /// The shipped policies, plus `pymirror`: python whose pip takes the test's plain-HTTP index.
    func policies() throws -> String {
        let directory = NSTemporaryDirectory() + "edgy-policies-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in ["base", "python", "sh"] {
            try FileManager.default.copyItem(atPath: TestSupport.repositoryRoot + "/policies/\(name).toml", toPath: directory + "/\(name).toml")
        }
        let python = try String(contentsOfFile: directory + "/python.toml", encoding: .utf8)
        var install = python.components(separatedBy: "install = [")[1].components(separatedBy: "]")[0].trimmingCharacters(in: .whitespacesAndNewlines)
        if install.hasSuffix(",") { install.removeLast() }
        try """
            description = "python, installing from an HTTP mirror"
            extends = "python"
            [dependencies]
            install = [\(install), "--trusted-host", "\(PackageIndex.address)"]
            """.write(toFile: directory + "/pymirror.toml", atomically: true, encoding: .utf8)
        return directory
    }

    func report(_ task: Any?) -> [String: Any]? {
        ((task as? [String: Any])?["attempts"] as? [[String: Any]])?.last?["report"] as? [String: Any]
    }

    @Test func dependenciesInstallOnceAndLayersAreListedAndRemoved() async throws {
        let index = PackageIndex()
        try index.start()
        defer { index.shutdown() }
        let policies = try policies()
        defer { try? FileManager.default.removeItem(atPath: policies) }
        let daemon = try DaemonProcess(environment: [
            "EDGY_EGRESS": "auto", "EDGY_EGRESS_TABLE": "edgydd\(getpid() % 100_000)", "EDGY_EGRESS_INTERFACE_PREFIX": "edq\(getpid() % 100_000)",
            "EDGY_EGRESS_RANGE": "10.242.0.0/24", "EDGY_EGRESS_RESOLVER_PORT": String(DaemonProcess.freePort()),
            "EDGY_DEPENDENCY_REGISTRIES": "pypi=\(index.url)",
        ], policies: policies)
        defer { daemon.stop() }

        // A dependencies list.
        let program = "import edgytoy\nprint(edgytoy.hello())\n"
        let (status, first) = try await daemon.request(
            "POST", "/v1/tasks?wait=90", json: ["policy": "pymirror", "input": program, "dependencies": ["edgytoy==1.0"]])
        #expect(status == 200, "\(String(describing: first)) \(daemon.log())")
        #expect((first as? [String: Any])?["stdout"] as? String == "hello from edgytoy 1.0\n", "\(String(describing: first))")
        let installed = try #require(report(first)?["dependencies"] as? [String: Any], "\(String(describing: first))")
        #expect(installed["source"] as? String == "installed")
        let key = try #require(installed["key"] as? String)

        // The same manifest as a file: the layer is cached.
        let (again, second) = try await daemon.request("POST", "/v1/tasks?wait=90", json: [
            "policy": "pymirror", "input": program,
            "files": [["path": "requirements.txt", "content": "edgytoy==1.0\n"]],
        ])
        #expect(again == 200)
        let cached = try #require(report(second)?["dependencies"] as? [String: Any], "\(String(describing: second))")
        #expect(cached["source"] as? String == "cached" && cached["key"] as? String == key)

        // A multi-step task: the install is its first step (given, or implied), then cases use it.
        for first in [[["name": "deps", "type": "dependencies"]], []] as [[[String: Any]]] {
            let (stepStatus, stepped) = try await daemon.request("POST", "/v1/tasks?wait=90", json: [
                "policy": "pymirror", "input": program, "dependencies": ["edgytoy==1.0"],
                "steps": first + [["name": "run", "cases": [["expected_stdout": "hello from edgytoy 1.0\n"]]]],
            ])
            #expect(stepStatus == 200)
            #expect((stepped as? [String: Any])?["status"] as? String == "succeeded", "\(String(describing: stepped))")
            let steps = report(stepped)?["steps"] as? [[String: Any]] ?? []
            #expect(steps.map { $0["kind"] as? String } == ["dependencies", "cases"], "\(steps)")
            #expect(steps.first?["name"] as? String == (first.isEmpty ? "dependencies" : "deps"))
            #expect((steps.first?["dependencies"] as? [String: Any])?["source"] as? String == "cached")
        }

        // The admin API lists the layer, then removes it.
        let (listed, layers) = try await daemon.request("GET", "/v1/layers")
        #expect(listed == 200)
        let entries = try #require((layers as? [String: Any])?["layers"] as? [[String: Any]])
        #expect(entries.map { $0["key"] as? String } == [key])
        #expect((entries.first?["bytes"] as? Int ?? 0) > 0 && entries.first?["users"] as? Int == 0)
        #expect(try await daemon.request("DELETE", "/v1/layers/\(key)").0 == 204)
        #expect(((try await daemon.request("GET", "/v1/layers").1 as? [String: Any])?["layers"] as? [Any])?.isEmpty == true)
        #expect(try await daemon.request("DELETE", "/v1/layers/\(key)").0 == 404)
        #expect(try await daemon.request("DELETE", "/v1/layers/not-a-key").0 == 400)

        // A package the index does not have: dependency_error, the log readable through the API.
        let (missingStatus, missing) = try await daemon.request(
            "POST", "/v1/tasks?wait=90", json: ["policy": "pymirror", "input": program, "dependencies": ["nosuchpackage==1.0"]])
        #expect(missingStatus == 200)
        #expect((missing as? [String: Any])?["outcome"] as? String == "dependency_error", "\(String(describing: missing))")
        let failed = try #require(report(missing)?["dependencies"] as? [String: Any])
        #expect((failed["log"] as? String)?.contains("No matching distribution found for nosuchpackage") == true)
        #expect(failed["retryable"] as? Bool == false)
    }

    @Test func manifestsThatPointElsewhereAreRefusedAtSubmission() async throws {
        let policies = try policies()
        defer { try? FileManager.default.removeItem(atPath: policies) }
        let daemon = try DaemonProcess(policies: policies)
        defer { daemon.stop() }
        func error(_ body: Any?) -> (code: String?, field: String?, message: String?) {
            let error = (body as? [String: Any])?["error"] as? [String: Any]
            return (error?["code"] as? String, error?["field"] as? String, error?["message"] as? String)
        }
        let (listStatus, listBody) = try await daemon.request(
            "POST", "/v1/tasks", json: ["policy": "python", "input": "print(1)", "dependencies": ["requests", "--index-url=http://evil.example/"]])
        #expect(listStatus == 400)
        #expect(error(listBody).field == "dependencies[1]", "\(String(describing: listBody))")

        let (fileStatus, fileBody) = try await daemon.request("POST", "/v1/tasks", json: [
            "policy": "python", "input": "print(1)",
            "files": [["path": "requirements.txt", "content": "requests\n-e git+https://evil.example/x\n"]],
        ])
        #expect(fileStatus == 400)
        #expect(error(fileBody).field == "files[0]", "\(String(describing: fileBody))")
        #expect(error(fileBody).message?.contains("requirements.txt: line 2") == true, "\(String(describing: fileBody))")

        let (noDepsStatus, noDepsBody) = try await daemon.request(
            "POST", "/v1/tasks", json: ["policy": "sh", "input": "true", "dependencies": ["requests"]])
        #expect(noDepsStatus == 422)
        #expect(error(noDepsBody).code == "dependencies_not_allowed")

        // Only admins see layers.
        let (created, token) = try await daemon.request("POST", "/v1/tokens", json: ["name": "r", "role": "submitter", "tenant": "t"])
        #expect(created == 201)
        let secret = try #require((token as? [String: Any])?["token"] as? String)
        #expect(try daemon.syncRequest("GET", "/v1/layers", bearer: secret).0 == 403)
    }
}
