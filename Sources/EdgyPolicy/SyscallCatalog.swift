/// The syscall vocabulary of policy files: every syscall name a policy may use, and the named
/// groups (`@default`, `@file-system`, …) that `allow` and `deny` lists expand.
public enum SyscallCatalog {
    /// Every x86_64 syscall name.
    public static let allNames: [String] = ["read", "write", "exit", "exit_group", "ptrace"]

    /// Group name (with its `@`) → member syscalls. Groups may name other groups.
    public static let groups: [String: [String]] = ["@default": ["read", "write", "exit", "exit_group"]]

    /// Expands groups recursively; unknown names are returned as they are.
    public static func expand(_ entries: [String]) -> Set<String> {
        var out = Set<String>()
        var seen = Set<String>()
        func visit(_ entry: String) {
            if let members = groups[entry] {
                guard seen.insert(entry).inserted else { return }
                members.forEach(visit)
            } else {
                out.insert(entry)
            }
        }
        entries.forEach(visit)
        return out
    }
}
