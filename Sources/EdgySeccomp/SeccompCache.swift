import EdgyPolicy
import Synchronization

/// Compiled programs per `[seccomp]` table, for the life of the process.
///
/// Policies are few and change only on reload, so entries are never evicted; an edited policy is a
/// new key. Compilation runs outside the lock, so two threads may compile the same table at once;
/// the first result stored wins and both callers get it.
public final class SeccompCache: Sendable {
    /// The process-wide cache.
    public static let shared = SeccompCache()

    private let programs = Mutex<[Policy.Seccomp: SeccompProgram]>([:])
    /// The tables asked for most recently, compared before the dictionary is hashed: hashing a
    /// table walks its hundreds of names (about 15 µs of every attempt), while a policy's requests
    /// share its arrays' storage, so `==` returns at once.
    private let recent = Mutex<[(table: Policy.Seccomp, program: SeccompProgram)]>([])
    /// Programs kept between processes too (`edgy run`); nil: this process only (edgyd, which
    /// compiles each policy once in its life anyway).
    private let disk = Mutex<SeccompDiskCache?>(nil)

    public init() {}

    /// From now on, looks for programs in `cache` before compiling, and keeps what it compiles there.
    public func keepOnDisk(_ cache: SeccompDiskCache?) {
        disk.withLock { $0 = cache }
    }

    /// The program for `seccomp`, compiled and checked on first use: only a table that passes
    /// ``SeccompCompiler/checkJailStart(_:)`` is kept, so a hit needs neither again.
    ///
    /// - Throws: ``SeccompError`` from ``SeccompCompiler/compile(_:)`` or the check; failures are not cached.
    public func program(for seccomp: Policy.Seccomp) throws(SeccompError) -> SeccompProgram {
        if let hit = recent.withLock({ $0.last { $0.table == seccomp }?.program }) { return hit }
        if let cached = programs.withLock({ $0[seccomp] }) {
            remember(seccomp, cached)
            return cached
        }
        let disk = disk.withLock { $0 }
        // A kept program passed the jail-start check when it was compiled: the table is its key.
        let compiled: SeccompProgram
        if let kept = disk?.load(seccomp) {
            compiled = kept
        } else {
            compiled = try SeccompCompiler.compile(seccomp)
            try SeccompCompiler.checkJailStart(seccomp)
            disk?.store(compiled, for: seccomp)
        }
        let kept = programs.withLock { programs in
            if let raced = programs[seccomp] { return raced }
            programs[seccomp] = compiled
            return compiled
        }
        remember(seccomp, kept)
        return kept
    }

    private func remember(_ table: Policy.Seccomp, _ program: SeccompProgram) {
        recent.withLock { recent in
            recent.removeAll { $0.table == table }
            if recent.count == 4 { recent.removeFirst() }
            recent.append((table, program))
        }
    }

    /// How many distinct tables have been compiled.
    public var count: Int { programs.withLock { $0.count } }
}

extension SeccompCompiler {
    /// ``compile(_:)`` and ``checkJailStart(_:)`` through ``SeccompCache/shared``.
    public static func cached(_ seccomp: Policy.Seccomp) throws(SeccompError) -> SeccompProgram {
        try SeccompCache.shared.program(for: seccomp)
    }
}
