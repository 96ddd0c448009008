import CEdgyJail
import EdgyPolicy
import EdgySeccomp
import Glibc

/// Builds the filesystem plan step by step: paths are host paths under the staging root, which
/// becomes "/" at pivot_root. Remembers which directories it already made, so every parent is
/// created once.
struct FilesystemPlanBuilder {
    let root: String
    /// Where the policy's mount sources are looked up.
    let sources: MountSourceCache
    private(set) var plan = FilesystemPlan()
    /// Paths inside the jail already created (directories, symlinks).
    private var made = Set<String>(["/"])

    private static let nodevNosuid = UInt(MS_NOSUID | MS_NODEV)

    init(root: String, sources: MountSourceCache = .shared) {
        self.root = root
        self.sources = sources
    }

    private func inRoot(_ path: String) -> String { path == "/" ? root : root + path }

    private mutating func mkdirs(_ path: String, mode: UInt32 = 0o755) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/"
            current += String(component)  // not `"/" + component`, a generic instantiated at run time
            if made.insert(current).inserted {
                plan.op(EDGY_OP_MKDIR, path: inRoot(current), mode: mode, describe: "mkdir \(current)")
            }
        }
    }

    private static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// Read-only binds of what the policy allows.
    mutating func addMounts(_ mounts: [Policy.Mount]) throws(PlanError) {
        for mount in mounts {
            let dest = try PlanBuilder.absolute(mount.destination, what: "mount destination")
            let source = sources.source(mount.source)
            if let target = source.symlinkTarget {
                addSymlink(to: target, at: dest)
                continue
            }
            if !source.exists && !mount.required { continue }
            // A remount in a user namespace must keep the locked flags of the source's mount.
            let flags = UInt(MS_BIND | MS_RDONLY) | Self.nodevNosuid | source.lockedFlags
            if source.exists && !source.isDirectory {
                mkdirs(Self.parent(dest))
                plan.op(EDGY_OP_MKFILE, path: inRoot(dest), mode: 0o644, describe: "create mount point \(dest)")
            } else {
                mkdirs(dest)
            }
            plan.op(
                EDGY_OP_BIND, path: inRoot(dest), source: mount.source, mountFlags: flags,
                optional: !mount.required, describe: "mount \(mount.source)")
        }
    }

    /// The worker's own binds (a dependency layer): directories that must exist.
    mutating func addExtraMounts(_ mounts: [JailMount]) throws(PlanError) {
        for mount in mounts {
            let dest = try PlanBuilder.absolute(mount.destination, what: "mount destination")
            var st = stat()
            guard lstat(mount.source, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw PlanError("\(mount.source) is not a directory")
            }
            mkdirs(dest)
            var flags = UInt(MS_BIND) | Self.nodevNosuid
            if !mount.writable { flags |= UInt(MS_RDONLY) }
            plan.op(EDGY_OP_BIND, path: inRoot(dest), source: mount.source, mountFlags: flags, describe: "mount \(mount.source) at \(dest)")
        }
    }

    /// A symlink source (e.g. /bin -> usr/bin on merged-/usr hosts) becomes the same symlink.
    private mutating func addSymlink(to target: String, at dest: String) {
        mkdirs(Self.parent(dest))
        if made.insert(dest).inserted {
            plan.op(EDGY_OP_SYMLINK, path: inRoot(dest), source: target, describe: "symlink \(dest) -> \(target)")
        }
    }

    /// /proc: a fresh one for the new PID namespace.
    mutating func addProc() {
        mkdirs("/proc")
        plan.op(EDGY_OP_PROC, path: inRoot("/proc"), mountFlags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), describe: "mount /proc")
    }

    /// A minimal /dev: a few harmless devices bound from the host, no tty.
    mutating func addDev(tmpMib: Int) {
        mkdirs("/dev")
        plan.op(EDGY_OP_TMPFS, path: inRoot("/dev"), dataString: "size=64k,nr_inodes=64,mode=0755",
                mountFlags: UInt(MS_NOSUID | MS_NOEXEC), describe: "mount /dev")
        for device in ["null", "zero", "full", "random", "urandom"] {
            plan.op(EDGY_OP_MKFILE, path: inRoot("/dev/\(device)"), mode: 0o666, describe: "create /dev/\(device)")
            plan.op(EDGY_OP_BIND, path: inRoot("/dev/\(device)"), source: "/dev/\(device)",
                    mountFlags: UInt(MS_BIND | MS_NOSUID | MS_NOEXEC), describe: "mount /dev/\(device)")
        }
        for (link, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                               ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            plan.op(EDGY_OP_SYMLINK, path: inRoot("/dev/\(link)"), source: target, describe: "symlink /dev/\(link)")
        }
        plan.op(EDGY_OP_MKDIR, path: inRoot("/dev/shm"), mode: 0o755, describe: "mkdir /dev/shm")
        plan.op(EDGY_OP_TMPFS, path: inRoot("/dev/shm"), dataString: "size=\(tmpMib)m,nr_inodes=1024,mode=1777",
                mountFlags: Self.nodevNosuid, describe: "mount /dev/shm")
    }

    /// Writable, size-capped tmpfs: /tmp, the policy's extra ones, and the working directory.
    /// - Returns: The working directory, normalized.
    mutating func addTmpfs(_ policy: Policy) throws(PlanError) -> String {
        let limits = policy.limits
        let uid = policy.identity.uid, gid = policy.identity.gid
        mkdirs("/tmp")
        plan.op(EDGY_OP_TMPFS, path: inRoot("/tmp"), dataString: "size=\(limits.tmpMib)m,nr_inodes=16384,mode=1777",
                mountFlags: Self.nodevNosuid, describe: "mount /tmp")
        for extra in policy.tmpfs {
            let dest = try PlanBuilder.absolute(extra.destination, what: "tmpfs destination")
            mkdirs(dest)
            plan.op(EDGY_OP_TMPFS, path: inRoot(dest),
                    dataString: "size=\(extra.sizeMib)m,nr_inodes=16384,mode=0755,uid=\(uid),gid=\(gid)",
                    mountFlags: Self.nodevNosuid, describe: "mount \(dest)")
        }
        let workdir = try PlanBuilder.absolute(policy.run.workdir, what: "workdir")
        mkdirs(workdir)
        plan.op(EDGY_OP_TMPFS, path: inRoot(workdir),
                dataString: "size=\(limits.workdirMib)m,nr_inodes=16384,mode=0755,uid=\(uid),gid=\(gid)",
                mountFlags: Self.nodevNosuid, describe: "mount \(workdir)")
        return workdir
    }

    /// Name service files, so that programs asking who they are get an answer (unless the policy
    /// brings its own /etc).
    /// An egress jail's resolv.conf names edgyd's resolver (any address would do: nftables
    /// redirects every DNS query of a jail to it).
    mutating func addNameService(_ policy: Policy, home: String, resolver: UInt32?) {
        guard !made.contains("/etc/passwd") && !policy.mounts.contains(where: { $0.destination == "/etc" }) else { return }
        let uid = policy.identity.uid, gid = policy.identity.gid
        mkdirs("/etc")
        let passwd = "root:x:0:0:root:/root:/bin/sh\njail:x:\(uid):\(gid):jail:\(home):/bin/sh\n"
        let group = "root:x:0:\njail:x:\(gid):\n"
        plan.op(EDGY_OP_WRITE_FILE, path: inRoot("/etc/passwd"), data: Array(passwd.utf8), mode: 0o644, describe: "write /etc/passwd")
        plan.op(EDGY_OP_WRITE_FILE, path: inRoot("/etc/group"), data: Array(group.utf8), mode: 0o644, describe: "write /etc/group")
        if policy.network.mode == .egress, let resolver {
            let conf = "nameserver \(IPv4Network.dotted(resolver))\noptions attempts:2 timeout:2\n"
            plan.op(EDGY_OP_WRITE_FILE, path: inRoot("/etc/resolv.conf"), data: Array(conf.utf8), mode: 0o644, describe: "write /etc/resolv.conf")
        }
    }

    /// The header: the root, hostname, network, and the user namespace's own limits.
    /// `filter`: the policy's compiled filter when the jail loads it while parked (`ParkedFilter`).
    mutating func finish(_ policy: Policy, lastCap: UInt32, filter: SeccompProgram? = nil) {
        var header = edgy_fs_plan()
        header.unshare_cgroup = 1
        header.user_namespace = policy.identity.userNamespace ? 1 : 0
        header.root = plan.string(root)
        header.root_options = plan.string("size=1m,nr_inodes=4096,mode=0755")
        header.hostname = plan.string(policy.run.hostname)
        header.loopback_up = policy.network.mode == .none ? 0 : 1
        header.last_cap = lastCap
        if policy.identity.userNamespace {
            UserNamespaceLimits.add(UserNamespaceLimits.values(for: policy), to: &plan, header: &header)
        }
        if let filter {
            // As the task plan carries it: kills as notifications, the compiled program as fallback.
            plan.addFilter(filter.killsAsNotifications, fallback: filter, to: &header)
        }
        plan.header = header
    }
}
