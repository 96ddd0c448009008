import CEdgyJail
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgySeccomp
import EdgySystem
import Glibc

/// Turns a request into its plans. Pure apart from reading the host's filesystem metadata to tell
/// directories, files and symlinks apart among the mount sources.
///
/// The filesystem plan is built in steps, in the order the child applies them: the policy's
/// mounts, /proc, /dev, the writable tmpfs mounts, the name service files, then its header. The
/// task plan follows: the task's files, then what to exec and how (argv, environment, ids,
/// rlimits, seccomp).
struct PlanBuilder {
    let host: JailHostConfiguration
    /// Where filesystem plans are kept between attempts; nil builds each afresh.
    var filesystemPlans: FilesystemPlanCache?

    func build(_ request: JailRequest, seccomp: SeccompProgram?, lastCap: UInt32) throws(PlanError) -> JailPlans {
        let policy = request.policy
        // The filter goes into one plan or the other, never both.
        let parked = seccomp.map { $0.instructionCount > 0 && ParkedFilter.applies(to: request) } ?? false
        let parkedFilter = parked ? seccomp : nil
        let filesystem: BuiltFilesystem
        if let filesystemPlans {
            let key = FilesystemPlanCache.Key(policy: policy, extraMounts: request.extraMounts, filterWhileParked: parked)
            filesystem = try filesystemPlans.plan(for: key) { () throws(PlanError) in
                try buildFilesystem(request, filter: parkedFilter, lastCap: lastCap)
            }
        } else {
            filesystem = try buildFilesystem(request, filter: parkedFilter, lastCap: lastCap)
        }

        var task = TaskPlan()
        try Self.addTaskFiles(request.files, workdir: filesystem.workdir, identity: policy.identity, to: &task)
        try Self.addExec(request, workdir: filesystem.workdir, seccomp: parked ? nil : seccomp, to: &task)
        Self.addRlimits(policy.limits, to: &task)
        return JailPlans(filesystem: filesystem, task: task)
    }

    /// The filesystem plan: what it builds depends on the request's policy and extra mounts, the
    /// filter loaded while parked, this host's configuration and its mount sources, nothing else
    /// (`FilesystemPlanCache.Key`).
    func buildFilesystem(_ request: JailRequest, filter: SeccompProgram?, lastCap: UInt32) throws(PlanError) -> BuiltFilesystem {
        let policy = request.policy
        var filesystem = FilesystemPlanBuilder(root: host.stagingRoot)
        try filesystem.addMounts(policy.mounts)
        try filesystem.addExtraMounts(request.extraMounts)
        filesystem.addProc()
        filesystem.addDev(tmpMib: policy.limits.tmpMib)
        let workdir = try filesystem.addTmpfs(policy)
        filesystem.addNameService(policy, home: workdir, resolver: host.egress?.resolverAddress)
        filesystem.finish(policy, lastCap: lastCap, filter: filter)
        return BuiltFilesystem(plan: filesystem.plan, blob: filesystem.plan.blob(), workdir: workdir)
    }

    // MARK: The task plan

    /// The task's files, straight from memory into the jail's tmpfs, after pivot_root: paths
    /// inside the jail.
    static func addTaskFiles(
        _ files: [TaskFile], workdir: String, identity: Policy.Identity, to task: inout TaskPlan
    ) throws(PlanError) {
        let uid = identity.uid, gid = identity.gid
        var madeInWorkdir = Set<String>()
        for file in files {
            let relative = try relative(file.path)
            var current = workdir
            for component in relative.split(separator: "/").dropLast() {
                current += "/" + component
                if madeInWorkdir.insert(current).inserted {
                    task.op(EDGY_OP_MKDIR, path: current, mode: 0o755, describe: "mkdir \(current)")
                    task.op(EDGY_OP_CHOWN, path: current, uid: uid, gid: gid, describe: "chown \(current)")
                }
            }
            let path = workdir + "/" + relative
            task.op(EDGY_OP_WRITE_FILE, path: path, data: file.contents, mode: file.mode & 0o7777 & ~0o6000,
                    uid: uid, gid: gid, describe: "write \(path)")
        }
    }

    /// What to exec: argv from the policy's run section (the request's command, which the caller
    /// has checked against the policy, replaces it), the environment (the policy's plus the
    /// task's, nothing else), the working directory, the ids and the seccomp program.
    static func addExec(
        _ request: JailRequest, workdir: String, seccomp: SeccompProgram?, to task: inout TaskPlan
    ) throws(PlanError) {
        let policy = request.policy
        var run = policy.run
        if request.command != nil { run.allowCommandOverride = true }
        let command = run.argv(override: request.command)
        guard let program = command.first, !program.isEmpty else {
            throw PlanError("no command: the policy `\(policy.name)` has none and the task gave none")
        }
        task.program = program
        var environment = policy.run.env
        for (key, value) in request.extraEnvironment { environment[key] = value }
        let argvOffsets = command.map { task.string($0) }
        let envOffsets = environment.sorted { $0.key < $1.key }.map { task.string("\($0.key)=\($0.value)") }

        var header = edgy_task_plan()
        header.workdir = task.string(workdir)
        header.exec_path = task.string(program)
        header.search_path = environment["PATH"].map { task.string($0) } ?? 0
        header.argv = task.offsetTable(argvOffsets)
        header.argc = UInt32(argvOffsets.count)
        header.envp = task.offsetTable(envOffsets)
        header.envc = UInt32(envOffsets.count)
        header.uid = policy.identity.uid
        header.gid = policy.identity.gid
        if request.learner != nil, let seccomp {
            // The learning filter asks about everything. Where the kernel refuses the child a
            // listener (a filter above the supervisor has the one a task may have), the same
            // filter traps to a ptrace tracer instead, which the parent attaches before execve.
            task.addFilter(seccomp, fallback: seccomp.notificationsAsTraps, to: &header)
            task.tracesWithoutListener = true
        } else if let seccomp, seccomp.instructionCount > 0 {
            // Kills as notifications the supervisor answers (it names the syscall); the program as
            // compiled for a kernel that refuses the child a listener.
            let fallback = request.tracesKillsWithoutListener ? seccomp.killsAsTraps : seccomp
            task.addFilter(seccomp.killsAsNotifications, fallback: fallback, to: &header)
            task.tracesWithoutListener = request.tracesKillsWithoutListener
        }
        task.header = header
    }

    /// The per-process limits, into the task plan's header.
    static func addRlimits(_ limits: Policy.Limits, to task: inout TaskPlan) {
        let cpu = UInt64(max(1, limits.cpuTimeS.rounded(.up)))
        let rlimits: [(Int32, UInt64, UInt64)] = [
            // SIGXCPU at the limit, SIGKILL a second later if it is ignored.
            (Int32(RLIMIT_CPU.rawValue), cpu, cpu + 1),
            (Int32(RLIMIT_NOFILE.rawValue), UInt64(limits.openFiles), UInt64(limits.openFiles)),
            (Int32(RLIMIT_FSIZE.rawValue), UInt64(limits.fileSizeMib) << 20, UInt64(limits.fileSizeMib) << 20),
            (Int32(RLIMIT_CORE.rawValue), 0, 0),
            // Counted per user, and charged to host root as well (the daemon owns the jail's user
            // namespace): these bound what a jail adds to root's counts.
            (Int32(__RLIMIT_SIGPENDING.rawValue), UInt64(limits.pendingSignals), UInt64(limits.pendingSignals)),
            (Int32(__RLIMIT_MSGQUEUE.rawValue), UInt64(limits.mqueueKib) << 10, UInt64(limits.mqueueKib) << 10),
            (Int32(__RLIMIT_MEMLOCK.rawValue), UInt64(limits.memlockKib) << 10, UInt64(limits.memlockKib) << 10),
        ]
        withUnsafeMutableBytes(of: &task.header.rlimits) { raw in
            let table = raw.bindMemory(to: edgy_rlimit.self)
            for (i, limit) in rlimits.enumerated() where i < table.count {
                table[i] = edgy_rlimit(resource: limit.0, reserved: 0, soft: limit.1, hard: limit.2)
            }
        }
        task.header.n_rlimits = UInt32(rlimits.count)
    }

    // MARK: Paths

    static func absolute(_ path: String, what: String) throws(PlanError) -> String {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw PlanError("\(what) `\(path)` must be an absolute path without `.` or `..`")
        }
        return "/" + path.split(separator: "/").joined(separator: "/")
    }

    static func relative(_ path: String) throws(PlanError) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !path.hasPrefix("/"), !components.isEmpty,
              !components.contains(where: { $0 == ".." || $0 == "." }),
              !path.utf8.contains(0)
        else {
            throw PlanError("file path `\(path)` must be relative, without `.` or `..`")
        }
        return components.joined(separator: "/")
    }
}
