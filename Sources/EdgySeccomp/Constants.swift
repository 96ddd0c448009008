/// clone(2) flags that create namespaces (<linux/sched.h>).
enum CloneFlags {
    static let newNS: UInt64 = 0x0002_0000
    static let newCgroup: UInt64 = 0x0200_0000
    static let newUTS: UInt64 = 0x0400_0000
    static let newIPC: UInt64 = 0x0800_0000
    static let newUser: UInt64 = 0x1000_0000
    static let newPID: UInt64 = 0x2000_0000
    static let newNet: UInt64 = 0x4000_0000
    static let namespaces: UInt64 = newNS | newCgroup | newUTS | newIPC | newUser | newPID | newNet
}
