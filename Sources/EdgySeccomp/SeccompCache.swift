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

    public init() {}

    /// The program for `seccomp`, compiled and checked on first use: only a table that passes
    /// ``SeccompCompiler/checkJailStart(_:)`` is kept, so a hit needs neither again.
    ///
    /// - Throws: ``SeccompError`` from ``SeccompCompiler/compile(_:)`` or the check; failures are not cached.
    public func program(for seccomp: Policy.Seccomp) throws(SeccompError) -> SeccompProgram {
        if let cached = programs.withLock({ $0[seccomp] }) { return cached }
        let compiled = try SeccompCompiler.compile(seccomp)
        try SeccompCompiler.checkJailStart(seccomp)
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
