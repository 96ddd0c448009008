import EdgyManifest
import Testing

/// What a task's manifest may say: package names and versions, never where packages come from.
struct ManifestTests {
    @Test(arguments: [
        "requests==2.32.3",
        "numpy>=1.26,<2",
        "rich[jupyter]~=13.0",
        "Django >= 4.2 , != 4.2.1",
        "tomli; python_version < \"3.11\"",
        "pkg===1.0+local.1",
        "a",
        "zope.interface",
    ])
    func requirementsPass(line: String) throws {
        #expect(try Manifest.checkRequirements(Array((line + "\n").utf8)) == 1)
    }

    @Test(arguments: [
        ("--index-url http://evil.example/simple", "options are not allowed"),
        ("-r other.txt", "options are not allowed"),
        ("-e .", "options are not allowed"),
        ("pkg @ https://evil.example/pkg.whl", "is not a requirement"),
        ("./local/dir", "expected a package name"),
        ("/abs/path.whl", "expected a package name"),
        ("git+https://github.com/x/y", "is not a requirement"),
        ("pkg==", "expected a version after =="),
        ("pkg[", "expected extras"),
        ("pkg; $(rm -rf /)", "environment marker"),
        ("pkg == 1.0 \\", "is not a requirement"),
    ])
    func requirementsThatPointElsewhereAreRefusedWithTheirLine(line: String, message: String) {
        let text = "# header\nrequests==2.32.3\n\(line)\n"
        #expect {
            try Manifest.checkRequirements(Array(text.utf8))
        } throws: { error in
            guard let error = error as? ManifestError else { return false }
            return error.line == 3 && error.message.contains(message)
        }
    }

    @Test func commentsBlankLinesAndCRLFAreFine() throws {
        let text = "# pinned\r\n\r\nrequests==2.32.3  # http\r\n   \nidna\n"
        #expect(try Manifest.checkRequirements(Array(text.utf8)) == 2)
    }

    @Test func sizeAndCountAreBounded() {
        let many = (0..<501).map { "p\($0)\n" }.joined()
        #expect(throws: ManifestError.self) { try Manifest.checkRequirements(Array(many.utf8)) }
        #expect(throws: ManifestError.self) { try Manifest.checkRequirements(Array(repeating: UInt8(ascii: "a"), count: Manifest.maxBytes + 1)) }
        #expect(throws: ManifestError.self) { try Manifest.checkRequirements([0xff, 0xfe]) }
    }

    @Test func aDependencyListBecomesARequirementsFileNamingTheBadEntry() throws {
        let file = try Manifest.requirementsFile(["requests==2.32.3", "idna"])
        #expect(String(decoding: file, as: UTF8.self) == "requests==2.32.3\nidna\n")
        #expect {
            try Manifest.requirementsFile(["idna", "x\n--index-url=http://evil"])
        } throws: { ($0 as? ManifestError)?.entry == 1 }
        #expect {
            try Manifest.requirementsFile(["idna", "--extra-index-url=http://evil"])
        } throws: { ($0 as? ManifestError)?.entry == 1 }
    }

    @Test func packageJSONNamesRegistryPackagesOnly() throws {
        let good = #"{"name":"app","dependencies":{"left-pad":"^1.3.0","@types/node":"20.x"},"devDependencies":{"tap":"latest"},"overrides":{"foo":{"bar":"1.0.0"}}}"#
        #expect(try Manifest.checkPackageJSON(Array(good.utf8)) == 3)
        for (bad, message) in [
            (#"{"dependencies":{"x":"file:../x"}}"#, "URLs, paths"),
            (#"{"dependencies":{"x":"git+https://github.com/a/b"}}"#, "URLs, paths"),
            (#"{"dependencies":{"x":"github-user/repo"}}"#, "URLs, paths"),
            (#"{"dependencies":{"x":"npm:evil@1"}}"#, "URLs, paths"),
            (#"{"dependencies":{"X Y":"1"}}"#, "not an npm package name"),
            (#"{"dependencies":{"x":1}}"#, "must be a string"),
            (#"{"dependencies":["x"]}"#, "must be an object"),
            (#"{"workspaces":["a"]}"#, "workspaces"),
            (#"{"overrides":{"x":"https://evil/x.tgz"}}"#, "overrides.x"),
            (#"[1,2]"#, "not a JSON object"),
            (#"{"dependencies":"#, "not a JSON object"),
        ] {
            #expect(throws: ManifestError.self, "\(bad)") { try Manifest.checkPackageJSON(Array(bad.utf8)) }
            do {
                _ = try Manifest.checkPackageJSON(Array(bad.utf8))
            } catch {
                #expect(error.message.contains(message), "\(bad): \(error.message)")
            }
        }
    }

    @Test func aDependencyListBecomesAPackageJSON() throws {
        let file = try Manifest.packageJSONFile(["left-pad@1.3.0", "@types/node@^20", "lodash"])
        #expect(try Manifest.checkPackageJSON(file) == 3)
        let text = String(decoding: file, as: UTF8.self)
        #expect(text.contains(#""@types/node": "^20""#) && text.contains(#""lodash": "*""#))
        #expect { try Manifest.packageJSONFile(["ok", "evil@file:/etc"]) } throws: { ($0 as? ManifestError)?.entry == 1 }
        #expect { try Manifest.packageJSONFile(["a@1", "a@2"]) } throws: { ($0 as? ManifestError)?.entry == 1 }
    }

    @Test func lockfilesAreJSONObjects() throws {
        try Manifest.checkPackageLock(Array(#"{"lockfileVersion":3,"packages":{}}"#.utf8))
        #expect(throws: ManifestError.self) { try Manifest.checkPackageLock(Array("nope".utf8)) }
    }

    @Test func deeplyNestedJSONIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: ManifestError.self) { try Manifest.checkPackageJSON(Array(deep.utf8).prefix(Manifest.maxBytes).map { $0 }) }
        let deepObject = "{\"overrides\":" + String(repeating: "{\"a\":", count: 5000) + "\"1\"" + String(repeating: "}", count: 5000) + "}"
        _ = try? Manifest.checkPackageJSON(Array(deepObject.utf8))
    }
}
