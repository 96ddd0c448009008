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
        if let cached = programs.withLock({ $0[seccomp] }) { return cached }
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
        return programs.withLock { programs in
            if let raced = programs[seccomp] { return raced }
            programs[seccomp] = compiled
            return compiled
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
