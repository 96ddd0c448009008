import EdgyModel
import EdgyPolicy
import EdgySystem
import Glibc

/// Collects an attempt's output files from its working directory, after every process of the jail
/// is dead and before the directory's tmpfs is released. It walks from a descriptor the parent
/// opened while the jail was parked (before any workload ran), one `openat` at a time with
/// `O_NOFOLLOW`: a symlink is reported, never followed, and only regular files are opened (FIFOs,
/// sockets and devices are reported, never opened).
struct OutputCollector {
    let selection: OutputSelection
    let maxFiles: Int
    let maxBytes: Int
    let deadline: UInt64

    private var report = OutputsReport()
    private var contents: [String: [UInt8]] = [:]
    private var bytes = 0
    private var outOfTime = false

    init(_ outputs: Policy.Outputs, task: [OutputPattern]?) {
        selection = OutputSelection(policy: outputs.patterns, task: task)
        maxFiles = outputs.maxFiles
        maxBytes = outputs.maxMib << 20
        deadline = monotonicNanos() + UInt64(outputs.timeMs) * 1_000_000
    }

    /// Every regular file of the working directory, for the next step of a multi-step task. Its
    /// tmpfs's own caps bound the count and the bytes; symlinks, special files and empty
    /// directories are not carried.
    static func workspace(workdir: Int32, limits: Policy.Limits) -> Workspace {
        let everything = Policy.Outputs(paths: ["**"], maxFiles: 16384, maxMib: limits.workdirMib, timeMs: 10_000)
        let (report, contents) = OutputCollector(everything, task: nil).collect(workdir: workdir)
        let files = report.files.map { TaskFile(path: $0.path, contents: contents[$0.sha256] ?? [], mode: $0.mode) }
        return Workspace(files: files, omitted: report.omitted, complete: !report.truncated && report.error == nil)
    }

    /// Walks the directory `workdir` (any descriptor of it, `O_PATH` included) and returns the
    /// report and the files' bytes by sha256.
    consuming func collect(workdir: Int32) -> (OutputsReport, [String: [UInt8]]) {
        let started = monotonicNanos()
        if !selection.isEmpty {
            let root = openat(workdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if root < 0 {
                report.error = "the working directory could not be opened (errno \(errno))"
            } else {
                walk(root, under: [])
            }
        }
        report.collectMs = Double(monotonicNanos() - started) / 1_000_000
        return (report, contents)
    }

    /// Takes ownership of `directory`.
    private mutating func walk(_ directory: Int32, under path: [Substring]) {
        guard let stream = fdopendir(directory) else {
            closeDescriptor(directory)
            return
        }
        defer { closedir(stream) }
        var names: [(name: String, utf8: Bool, type: UInt8)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> (String, Bool) in
                let bytes = raw.prefix { $0 != 0 }
                return (String(decoding: bytes, as: UTF8.self), String(validating: bytes, as: UTF8.self) != nil)
            }
            if name.0 != "." && name.0 != ".." { names.append((name.0, name.1, entry.pointee.d_type)) }
        }
        // Sorted, so the same tree collects the same files under the same caps.
        for (name, utf8, direntType) in names.sorted(by: { $0.name < $1.name }) {
            if outOfTime { return }
            let segments = path + [Substring(name)]
            let relative = segments.joined(separator: "/")
            if monotonicNanos() > deadline {
                outOfTime = true
                report.omit(relative, .time)
                return
            }
            // A name that is not UTF-8 cannot be listed or asked for exactly: reported, not read.
            guard utf8 else {
                if selection.selects(segments) || selection.reachesBelow(segments) { report.omit(relative, .unreadable) }
                continue
            }
            // The entry's type from readdir (tmpfs fills it in) saves a stat per file; `take`
            // checks the opened file's own type anyway.
            let type: mode_t
            switch Int(direntType) {
            case DT_REG: type = S_IFREG
            case DT_DIR: type = S_IFDIR
            case DT_LNK: type = S_IFLNK
            default:
                var info = stat()
                guard fstatat(dirfd(stream), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                type = info.st_mode & S_IFMT
            }
            if type == S_IFDIR {
                // Bounded depth: the path length the kernel allows bounds it anyway.
                guard segments.count < 64, selection.reachesBelow(segments) else { continue }
                let child = openat(dirfd(stream), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { walk(child, under: segments) }
                continue
            }
            guard selection.selects(segments) else { continue }
            switch type {
            case S_IFLNK: report.omit(relative, .symlink)
            case S_IFREG: take(relative, name: name, in: dirfd(stream))
            default: report.omit(relative, .special)
            }
        }
    }

    private mutating func take(_ path: String, name: String, in directory: Int32) {
        guard report.files.count < maxFiles else { return report.omit(path, .maxFiles) }
        // O_NOFOLLOW and O_NONBLOCK: a symlink or FIFO swapped in since the listing is neither
        // followed nor waited on, and the type check below leaves it out.
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { return report.omit(path, errno == ELOOP ? .symlink : .unreadable) }
        defer { closeDescriptor(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return report.omit(path, .unreadable) }
        guard info.st_mode & S_IFMT == S_IFREG else { return report.omit(path, .special) }
        let size = Int(info.st_size)
        guard bytes + size <= maxBytes else { return report.omit(path, .maxBytes) }
        var complete = true
        let data = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            while count < size {
                let n = read(fd, buffer.baseAddress! + count, size - count)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { complete = false; break }
                count += n
            }
        }
        guard complete else { return report.omit(path, .unreadable) }
        bytes += size
        let digest = BlobDigest.sha256Hex(data)
        contents[digest] = data
        report.files.append(OutputsReport.File(path: path, size: size, sha256: digest, mode: UInt32(info.st_mode & 0o777)))
    }
}

extension Workspace {
    /// The output files among these, as a jail would have collected them from its working
    /// directory: the policy's and the task's patterns, in path order, under the same caps.
    public func outputs(_ outputs: Policy.Outputs, task: [OutputPattern]?) -> (OutputsReport, [String: [UInt8]]) {
        let selection = OutputSelection(policy: outputs.patterns, task: task)
        var report = OutputsReport()
        var contents: [String: [UInt8]] = [:]
        var bytes = 0
        guard outputs.enabled, !selection.isEmpty else { return (report, contents) }
        for left in omitted where selection.selects(left.path.split(separator: "/")) {
            report.omit(left.path, left.reason)
        }
        for file in files.sorted(by: { $0.path < $1.path }) where selection.selects(file.path.split(separator: "/")) {
            guard report.files.count < outputs.maxFiles else { report.omit(file.path, .maxFiles); continue }
            guard bytes + file.contents.count <= outputs.maxMib << 20 else { report.omit(file.path, .maxBytes); continue }
            bytes += file.contents.count
            let digest = BlobDigest.sha256Hex(file.contents)
            contents[digest] = file.contents
            report.files.append(OutputsReport.File(path: file.path, size: file.contents.count, sha256: digest, mode: file.mode))
        }
        return (report, contents)
    }
}
