import CSeccomp
import Crypto
import EdgyModel
import EdgyPolicy
import EdgySystem
import Glibc

/// Compiled programs kept in files between processes, for `edgy run`: a CLI process compiles a
/// policy's filter once per host boot instead of at every start (libseccomp's compile and the
/// jail-start check are a sixth of the command's CPU).
///
/// A file loaded from here becomes a jail's seccomp filter, so the cache trusts only what its own
/// user could have written: the directory and each file must belong to the effective user and be
/// writable by nobody else, files are opened without following links, and each carries the key it
/// was written for and the SHA-256 of its program (a torn or stray file is recompiled, not used).
///
/// The key covers everything the compiled bytes depend on: the `[seccomp]` table, the libseccomp
/// version and the kernel API level it detected, the kernel release, the architecture, and this
/// executable's identity (device, inode, size, modification time), so a rebuilt `edgy` with a
/// changed compiler never reads an older build's programs. Every failure is a miss: the cache
/// never makes a run fail.
public struct SeccompDiskCache: Sendable {
    /// Where `edgy run` keeps its programs: a tmpfs, emptied at boot like the kernel they were built for.
    public static let defaultDirectory = "/run/edgy/seccomp"

    static let magic: [UInt8] = Array("EDGYBPF1".utf8)
    /// magic, key, program length (u32 little endian), program SHA-256.
    static let headerSize = 8 + 32 + 4 + 32
    /// The kernel's limit on one filter's instructions (`BPF_MAXINSNS`).
    static let maxInstructions = 4096

    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The program compiled for `seccomp` by an earlier process, if one was kept and is intact.
    public func load(_ seccomp: Policy.Seccomp) -> SeccompProgram? {
        guard let key = Self.key(for: seccomp), directoryIsPrivate(create: false) else { return nil }
        let fd = open(path(for: key), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Self.isPrivateFile(info),
              info.st_size >= Self.headerSize, info.st_size <= Self.headerSize + Self.maxInstructions * 8
        else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        guard Self.readFully(fd, into: &bytes) else { return nil }
        return Self.decode(bytes, key: key)
    }

    /// Keeps `program` for later processes (best effort: a write that fails leaves no file).
    public func store(_ program: SeccompProgram, for seccomp: Policy.Seccomp) {
        guard let key = Self.key(for: seccomp), directoryIsPrivate(create: true) else { return }
        let bytes = Self.encode(program, key: key)
        let final = path(for: key)
        let temporary = "\(directory)/.\(BlobDigest.hex(key)).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = writeFully(fd, bytes)
        close(fd)
        // rename(2) replaces atomically: a reader sees the old file, the new one, or none.
        if !written || rename(temporary, final) != 0 { unlink(temporary) }
    }

    func path(for key: [UInt8]) -> String { "\(directory)/\(BlobDigest.hex(key)).bpf" }

    // MARK: - The file format

    static func encode(_ program: SeccompProgram, key: [UInt8]) -> [UInt8] {
        var bytes = magic + key
        let count = UInt32(program.bytes.count)
        bytes += [UInt8(count & 0xff), UInt8(count >> 8 & 0xff), UInt8(count >> 16 & 0xff), UInt8(count >> 24)]
        bytes += Array(SHA256.hash(data: program.bytes))
        return bytes + program.bytes
    }

    /// The program in `bytes` if they are a whole, intact file written for `key`.
    static func decode(_ bytes: [UInt8], key: [UInt8]) -> SeccompProgram? {
        guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic, Array(bytes[8..<40]) == key else { return nil }
        let count = Int(bytes[40]) | Int(bytes[41]) << 8 | Int(bytes[42]) << 16 | Int(bytes[43]) << 24
        guard count > 0, count % 8 == 0, count / 8 <= maxInstructions, bytes.count == headerSize + count else { return nil }
        let program = Array(bytes[headerSize...])
        guard Array(SHA256.hash(data: program)) == Array(bytes[44..<76]) else { return nil }
        return SeccompProgram(bytes: program)
    }

    // MARK: - The key

    /// SHA-256 of what the compiled bytes depend on; nil when this process cannot say (no cache then).
    static func key(for seccomp: Policy.Seccomp) -> [UInt8]? {
        guard let environment = compilerIdentity else { return nil }
        var text = environment
        // Length-prefixed fields: no two tables give the same text.
        func field(_ value: String) { text += "\(value.utf8.count):\(value);" }
        switch seccomp.defaultAction {
        case .killProcess: field("kill_process")
        case .log: field("log")
        case .errno(let value, _): field("errno \(value)")
        }
        for list in [seccomp.allow, seccomp.deny, seccomp.socketFamilies, seccomp.ioctlDeny] {
            field("\(list.count)")
            list.forEach(field)
        }
        field(seccomp.allowNamespaceClone ? "namespaces" : "no namespaces")
        return Array(SHA256.hash(data: Array(text.utf8)))
    }

    /// The compiler's side of the key, read once per process.
    static let compilerIdentity: String? = {
        var exe = stat()
        var system = utsname()
        guard stat("/proc/self/exe", &exe) == 0, uname(&system) == 0, let version = seccomp_version() else { return nil }
        let release = withUnsafeBytes(of: system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: system.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "edgy-seccomp-cache 1;\(machine);\(release);libseccomp \(version.pointee.major).\(version.pointee.minor)."
            + "\(version.pointee.micro) api \(seccomp_api_get());exe \(exe.st_dev):\(exe.st_ino):\(exe.st_size):"
            + "\(exe.st_mtim.tv_sec).\(exe.st_mtim.tv_nsec);"
    }()

    // MARK: - Files

    /// The directory exists (made if `create`), is a real directory of the effective user, and
    /// nobody else may write to it.
    func directoryIsPrivate(create: Bool) -> Bool {
        if create && mkdir(directory, 0o700) != 0 {
            // A fresh host may not have /run/edgy yet: one parent, no deeper.
            guard errno == ENOENT || errno == EEXIST else { return false }
            if errno == ENOENT {
                let parent = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
                guard !parent.isEmpty, mkdir(parent, 0o755) == 0 || errno == EEXIST,
                      mkdir(directory, 0o700) == 0 || errno == EEXIST
                else { return false }
            }
        }
        var info = stat()
        guard lstat(directory, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid() && info.st_mode & 0o022 == 0
    }

    static func isPrivateFile(_ info: stat) -> Bool {
        info.st_mode & S_IFMT == S_IFREG && info.st_uid == geteuid() && info.st_mode & 0o022 == 0
    }

    static func readFully(_ fd: Int32, into bytes: inout [UInt8]) -> Bool {
        let count = bytes.count
        guard transferFully(count, { done in bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) } }) else { return false }
        // The file grew after fstat: not the file that was measured.
        var extra: UInt8 = 0
        return read(fd, &extra, 1) == 0
    }
}
