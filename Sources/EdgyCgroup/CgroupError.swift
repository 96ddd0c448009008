import SystemPackage

/// A cgroup infrastructure fault: what failed, on which file, with which errno.
///
/// A limit the host cannot enforce is a `CgroupError` at start, never a silently dropped limit
///.
public struct CgroupError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure, for callers that branch on it.
    public enum Code: Sendable, Hashable {
        /// No usable cgroup mount (v1 controller hierarchy or cgroup2) was found.
        case notMounted
        /// A controller or control file needed for a requested limit is absent.
        case missingController
        /// A limit value is out of range (zero memory, non-positive cores, …).
        case invalidLimit
        /// A group name is empty after sanitizing.
        case invalidName
        /// A syscall on a cgroup file or directory failed.
        case io
        /// The group still had processes after the kill, so it could not be removed.
        case busy
    }

    public let code: Code
    /// What was being done, e.g. "write memory.max" or "controller memory not mounted".
    public let what: String
    /// The file or directory concerned, if any.
    public let path: String?
    /// The errno, if a syscall failed.
    public let errno: Errno?

    init(_ code: Code, _ what: String, path: String? = nil, errno: Errno? = nil) {
        self.code = code
        self.what = what
        self.path = path
        self.errno = errno
    }

    public var description: String {
        var s = "cgroup: \(what)"
        if let path { s += " (\(path))" }
        if let errno { s += ": \(errno) [errno \(errno.rawValue)]" }
        return s
    }
}
