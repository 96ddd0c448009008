/// clone(2) flags that create namespaces (<linux/sched.h>).
public enum CloneFlags {
    static let newNS: UInt64 = 0x0002_0000
    static let newCgroup: UInt64 = 0x0200_0000
    static let newUTS: UInt64 = 0x0400_0000
    static let newIPC: UInt64 = 0x0800_0000
    static let newUser: UInt64 = 0x1000_0000
    static let newPID: UInt64 = 0x2000_0000
    static let newNet: UInt64 = 0x4000_0000
    public static let namespaces: UInt64 = newNS | newCgroup | newUTS | newIPC | newUser | newPID | newNet

    /// "CLONE_NEWUSER|CLONE_NEWNS" for the namespace flags set in `flags`.
    public static func describeNamespaces(_ flags: UInt64) -> String {
        let names: [(UInt64, String)] = [
            (newNS, "CLONE_NEWNS"), (newCgroup, "CLONE_NEWCGROUP"), (newUTS, "CLONE_NEWUTS"), (newIPC, "CLONE_NEWIPC"),
            (newUser, "CLONE_NEWUSER"), (newPID, "CLONE_NEWPID"), (newNet, "CLONE_NEWNET"),
        ]
        return names.filter { flags & $0.0 != 0 }.map(\.1).joined(separator: "|")
    }
}
