/// What a workload used in learning runs (`JailRequest.learner`): each syscall with the argument
/// classes a policy can express, the files it opened or looked up, the destinations it tried, and
/// the calls its `--from` policy would have refused. Counts add up over runs (`merge`).
public struct LearnedUse: Sendable, Hashable, Codable {
    /// How often something was seen, and when first: milliseconds after the workload's exec, in
    /// the run (1-based) that first saw it.
    public struct Count: Sendable, Hashable, Codable {
        public var count: Int
        public var firstMs: Double
        public var firstRun: Int

        public init(count: Int = 0, firstMs: Double = 0, firstRun: Int = 1) {
            self.count = count
            self.firstMs = firstMs
            self.firstRun = firstRun
        }

        mutating func add(_ other: Count) {
            if count == 0 || (other.firstRun, other.firstMs) < (firstRun, firstMs) {
                firstMs = other.firstMs
                firstRun = other.firstRun
            }
            count += other.count
        }
    }

    /// How a path was used: opened for reading, for writing (or created, removed), or only looked
    /// up (stat, access, readlink, chdir, and executables and their ELF interpreters).
    public struct FileUse: Sendable, Hashable, Codable {
        public var read = 0
        public var write = 0
        public var lookup = 0
        public var exec = 0

        public init() {}

        mutating func add(_ other: FileUse) {
            read += other.read
            write += other.write
            lookup += other.lookup
            exec += other.exec
        }
    }

    /// A call the `--from` policy would not have run: refused (it failed with `errno`), recorded
    /// as a warning, never proposed.
    public struct Refusal: Sendable, Hashable, Codable {
        public var count: Count
        /// "on the deny list", "not in the allow list", "socket family netlink is not allowed", …
        public var reason: String
        /// The errno the call got, by name ("EPERM").
        public var errno: String

        public init(count: Count, reason: String, errno: String) {
            self.count = count
            self.reason = reason
            self.errno = errno
        }
    }

    /// Syscall name → use. Includes the calls the jail allows without asking (`jailStartSyscalls`).
    public var syscalls: [String: Count] = [:]
    /// Address families given to socket(2), by policy name ("inet", or "family 38").
    public var socketFamilies: [String: Count] = [:]
    /// ioctl(2) requests, by name where the policy vocabulary has one, else in hex ("0x5401").
    public var ioctls: [String: Count] = [:]
    /// clone(2) calls by namespace flags: "no namespace flags", or "CLONE_NEWUSER|CLONE_NEWNS".
    public var clones: [String: Count] = [:]
    /// Path as the workload saw it → how it was used.
    public var files: [String: FileUse] = [:]
    /// connect(2) and sendto(2) destinations: "inet 10.0.0.1:443", "inet6 [::1]:80", "unix /run/x".
    public var destinations: [String: Count] = [:]
    /// What was refused, keyed by a description: "ptrace", "socket(netlink)", "ioctl(TIOCSTI)".
    public var refused: [String: Refusal] = [:]
    /// Paths the workload named that did not read (a bad pointer) or resolve: counted, not listed.
    public var unreadablePaths = 0
    /// How many runs are merged in.
    public var runs = 1
    /// Of those, how many were observed by the ptrace tracer, because a filter above the
    /// supervisor holds the seccomp listener a task may have.
    public var tracedRuns = 0

    public init() {}

    /// Adds `other`'s counts; `other`'s run numbers count after this value's runs.
    public mutating func merge(_ other: LearnedUse) {
        let offset = runs
        func shifted(_ count: Count) -> Count {
            var count = count
            count.firstRun += offset
            return count
        }
        for (key, value) in other.syscalls { syscalls[key, default: Count()].add(shifted(value)) }
        for (key, value) in other.socketFamilies { socketFamilies[key, default: Count()].add(shifted(value)) }
        for (key, value) in other.ioctls { ioctls[key, default: Count()].add(shifted(value)) }
        for (key, value) in other.clones { clones[key, default: Count()].add(shifted(value)) }
        for (key, value) in other.files { files[key, default: FileUse()].add(value) }
        for (key, value) in other.destinations { destinations[key, default: Count()].add(shifted(value)) }
        for (key, value) in other.refused {
            if var known = refused[key] {
                known.count.add(shifted(value.count))
                refused[key] = known
            } else {
                refused[key] = Refusal(count: shifted(value.count), reason: value.reason, errno: value.errno)
            }
        }
        unreadablePaths += other.unreadablePaths
        runs += other.runs
        tracedRuns += other.tracedRuns
    }
}
