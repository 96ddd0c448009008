import EdgyFuzzSupport
import EdgySyscallArguments

/// libFuzzer calls this with what a workload controls while it is learned: the bytes of a socket
/// address, of an executable's ELF header and program headers, and a path. A trap, a hang, or a
/// normalized path that is not absolute and free of `.`/`..` is the bug it looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    _ = SyscallArguments.describe(sockaddr: Array(bytes.prefix(110)))
    _ = SyscallArguments.elfInterpreter { offset, count in
        guard offset <= UInt64(bytes.count), count <= bytes.count - Int(offset) else { return nil }
        return Array(bytes[Int(offset)..<Int(offset) + count])
    }
    let path = String(decoding: bytes.prefix(4096), as: UTF8.self)
    let normalized = SyscallArguments.normalized(path, base: "/work")
    let components = normalized.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    if !normalized.hasPrefix("/") || components.contains(".") || components.contains("..") || (normalized != "/" && components.contains("")) {
        fatalError("normalized \(path.debugDescription) to \(normalized.debugDescription)")
    }
    return 0
}

@main struct FuzzLearning {
    static func main() { FuzzDriver.main(fuzz) }
}
