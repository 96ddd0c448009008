import EdgyFuzzSupport
import EdgyManifest

/// libFuzzer calls this with each manifest a task could send; a trap in a check is the bug it
/// looks for, and so is a file built from a dependency list that its own check then refuses.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    _ = try? Manifest.checkRequirements(bytes)
    _ = try? Manifest.checkPackageJSON(bytes)
    try? Manifest.checkPackageLock(bytes)
    // The same bytes as a `dependencies` list, one entry per line.
    let entries = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if let file = try? Manifest.requirementsFile(entries), (try? Manifest.checkRequirements(file)) != entries.count {
        fatalError("a requirements.txt built from \(entries) does not check")
    }
    if let file = try? Manifest.packageJSONFile(entries), (try? Manifest.checkPackageJSON(file)) != entries.count {
        fatalError("a package.json built from \(entries) does not check")
    }
    return 0
}

@main struct FuzzManifest {
    static func main() { FuzzDriver.main(fuzz) }
}
