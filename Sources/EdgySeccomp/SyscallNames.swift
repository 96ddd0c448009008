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

    /// The name of syscall `number` of the ABI `arch` (an `AUDIT_ARCH_*` value, as a seccomp
    /// notification gives it): "ptrace" for a native call, "i386 syscall 26", "x32 syscall 101"
    /// (the `0x40000000` bit) or "syscall 999" for what has no native name. Never nil: a report
    /// always says which call it was.
    public static func describe(number: Int32, arch: UInt32) -> String {
        if arch == seccomp_arch_native() {
            if number & x32Bit != 0 { return "x32 syscall \(number & ~x32Bit)" }
            return name(ofNativeSyscall: number) ?? "syscall \(number)"
        }
        let abi = arch == auditArchI386 ? "i386" : "arch 0x\(String(arch, radix: 16))"
        return "\(abi) syscall \(number)"
    }

    /// Whether a notification's `arch` and `number` are a call of the native ABI (not i386, not x32).
    public static func isNative(number: Int32, arch: UInt32) -> Bool {
        arch == seccomp_arch_native() && number & x32Bit == 0
    }

    private static let x32Bit: Int32 = 0x4000_0000
    private static let auditArchI386: UInt32 = 0x4000_0003
}
