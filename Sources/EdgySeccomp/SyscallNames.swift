import CSeccomp
import Glibc

/// Native syscall numbers to names, through libseccomp's tables.
public enum SyscallNames {
    /// "ptrace" for 101 on x86_64; nil for a number the library does not know.
    public static func name(ofNativeSyscall number: Int32) -> String? {
        guard let raw = seccomp_syscall_resolve_num_arch(seccomp_arch_native(), number) else { return nil }
        defer { free(raw) }
        return String(cString: raw)
    }
}
