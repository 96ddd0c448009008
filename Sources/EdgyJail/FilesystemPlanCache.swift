import EdgyPolicy
import EdgySystem
import Synchronization

/// A filesystem plan as an attempt uses it: the plan, its blob (what a jail of its shape was
/// built from) and the working directory it mounts.
struct BuiltFilesystem: Sendable {
    var plan: FilesystemPlan
    let blob: [UInt8]
    /// `blob`'s hash, taken once: the pool hashes a jail's shape several times an attempt, and
    /// hashing the ~4 KB blob each time cost about 20 µs of CPU a task.
    let blobHash: Int
    var workdir: String

    init(plan: FilesystemPlan, blob: [UInt8], workdir: String) {
        self.plan = plan
        self.blob = blob
        self.workdir = workdir
        var hasher = Hasher()
        blob.withUnsafeBytes { hasher.combine(bytes: $0) }
        blobHash = hasher.finalize()
    }
}

/// The filesystem plans of one supervisor's recent attempts, by what they are made of: the policy,
/// the request's extra mounts and whether the jail loads the policy's filter while parked (the
/// filter is compiled from the policy's `[seccomp]` table; the host's configuration is the
/// supervisor's). The rest is the mount sources' state on the host, which `MountSourceCache`
/// keeps at most a second old; a plan is kept a second too, so what it knows of a source is at
/// most two seconds old. A stale source costs a setup error, never a different mount: the plan
/// names the source's path, which the jail resolves when it mounts.
///
/// Building the default policy's plan (eight mounts, /proc, /dev, three tmpfs, the name service
/// files) took 0.1-0.2 ms of string and array work on every attempt's critical path, for a plan
/// that only finds the parked jail already built from it. Keys are compared, not hashed: the
/// requests of one policy share its arrays' storage, so `==` returns at the first field, where
/// hashing a policy walks all of it (its seccomp table has hundreds of names).
final class FilesystemPlanCache: Sendable {
    struct Key: Equatable, Sendable {
        var policy: Policy
        var extraMounts: [JailMount]
        var filterWhileParked: Bool
    }

    let maxAgeNanos: UInt64
    /// Policies in use at once are few; past this many plans the least recently used goes.
    private let capacity = 16
    /// Most recently used last.
    private let entries = Mutex<[(key: Key, built: BuiltFilesystem, at: UInt64)]>([])

    init(maxAgeNanos: UInt64 = 1_000_000_000) {
        self.maxAgeNanos = maxAgeNanos
    }

    /// The plan for `key`, built by `build` when none younger than `maxAgeNanos` is kept. Failures
    /// are not kept.
    func plan(
        for key: Key, now: UInt64 = monotonicNanos(), build: () throws(PlanError) -> BuiltFilesystem
    ) throws(PlanError) -> BuiltFilesystem {
        let kept = entries.withLock { entries -> BuiltFilesystem? in
            guard let index = entries.lastIndex(where: { $0.key == key }) else { return nil }
            guard now &- entries[index].at < maxAgeNanos else {
                entries.remove(at: index)
                return nil
            }
            if index != entries.count - 1 { entries.append(entries.remove(at: index)) }
            return entries[entries.count - 1].built
        }
        if let kept { return kept }
        let built = try build()
        entries.withLock { entries in
            entries.removeAll { $0.key == key }
            if entries.count >= capacity { entries.removeFirst() }
            entries.append((key, built, now))
        }
        return built
    }
}
