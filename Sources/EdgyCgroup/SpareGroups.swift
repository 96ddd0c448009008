import Glibc
import Synchronization

/// The v1 hierarchies whose group a finished jail can hand to the next jail as good as new:
/// the freezer has no counter, the cpu group only the quota Edgy writes, and cpuacct's counters
/// go back to zero with one write of `0` to `cpuacct.usage` (user and system time with it).
/// Not memory (what a jail leaves charged stays charged: a few hundred KiB of slab and cache
/// after a plain exit, and `memory.force_empty` takes a millisecond), nor pids (`pids.peak`
/// cannot be reset).
let reusableV1Controllers: Set<String> = ["freezer", "cpu", "cpuacct"]

/// One kept group: a directory of the same name in each reusable hierarchy.
struct SpareGroup: Sendable {
    let name: String
    /// The CFS quota in force, in µs; nil while unlimited (`-1`, as a new group starts).
    var quotaMicros: Int?

    private static let counter = Atomic<Int>(0)

    /// A name no other spare of this process, or of another process under the same parent, has.
    static func fresh() -> SpareGroup {
        let n = counter.add(1, ordering: .relaxed).newValue
        return SpareGroup(name: "spare-\(getpid())-\(n)", quotaMicros: nil)
    }
}

/// v1 groups kept between jails in the reusable hierarchies (`reusableV1Controllers`).
///
/// A jail's group is made by a `mkdir` in each of five hierarchies and removed by an `rmdir` in
/// each, and the kernel builds and tears down every control file each time: about 0.45 ms of
/// CPU per jail on a 2-core VM, 0.22 ms of it in these three. A jail that ended by itself hands
/// its directories in these hierarchies back here when its group is removed, and the next jail
/// takes them after a reset; its memory and pids groups are made and removed as before.
final class SpareGroups: Sendable {
    /// The parent directories of the reusable hierarchies.
    let parents: [String]
    let capacity: Int
    private let state = Mutex<(spares: [SpareGroup], closed: Bool)>(([], false))

    init(parents: [String], capacity: Int) {
        self.parents = parents
        self.capacity = capacity
    }

    /// How many spares wait.
    var count: Int { state.withLock { $0.spares.count } }

    func take() -> SpareGroup? {
        state.withLock { $0.spares.popLast() }
    }

    /// Keeps `spare` for the next jail, or removes it when enough wait or the manager is gone.
    func give(_ spare: SpareGroup) {
        let kept = state.withLock { s in
            guard !s.closed, s.spares.count < capacity else { return false }
            s.spares.append(spare)
            return true
        }
        if !kept { remove(spare) }
    }

    /// The spare's directories, one per reusable hierarchy.
    func directories(of spare: SpareGroup) -> [String] {
        parents.map { $0 + "/" + spare.name }
    }

    /// Removes `spare`'s directories (best effort: an empty group's `rmdir` does not fail but for
    /// a directory already gone).
    func remove(_ spare: SpareGroup) {
        for dir in directories(of: spare) { _ = CgroupFS.rmdir(dir) }
    }

    /// Removes every spare; those given back later are removed at once.
    func close() {
        let all = state.withLock { s in
            s.closed = true
            defer { s.spares = [] }
            return s.spares
        }
        for spare in all { remove(spare) }
    }
}
