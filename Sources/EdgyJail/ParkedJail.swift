import CEdgyJail
import EdgyCgroup
import EdgyNetwork
import EdgySystem
import Glibc
import SystemPackage

/// A jail cloned ahead of demand: namespaces made, id maps written, inside its own cgroup (with the
/// shape's limits), stdio pipes attached, its filesystem built, waiting at its second gate for a
/// task plan. It holds no fd but its own (stdio, gate, error pipe, plan memfd, mount namespace).
/// Not copyable: it is released (its process and stdio move into a `JailProcess`) or aborted,
/// once.
struct ParkedJail: ~Copyable, Sendable {
    var pending: edgy_pending
    /// The parent's ends: stdin's write end, stdout's and stderr's read ends.
    var stdinFD: Int32
    var stdoutFD: Int32
    var stderrFD: Int32
    var cgroup: JailCgroup?
    /// The jail's mount namespace, held open so that the workload's exit does not tear down its
    /// ~25 mounts (an expedited RCU grace period and six superblocks, all before the exit is
    /// reported); the last close, by the pool thread after the attempt, does. -1 if not held.
    var mountNamespaceFD: Int32 = -1
    /// `[outputs]` policies: the working directory's tmpfs, opened (`O_PATH`) through
    /// `/proc/PID/root` once the filesystem is built and before any workload ran, so no path the
    /// workload could change is followed. It keeps the tmpfs readable after the namespace goes.
    var workdirFD: Int32 = -1
    /// Egress jails: the veth pair and rules on the host, removed when the jail is retired.
    var egress: EgressLease?

    /// Clones a jail of `shape` on the calling thread (its parent-death signal is tied to it) and
    /// leaves it at the second gate. Everything slow on cgroup v1 (mkdir in every hierarchy, an
    /// attach where the child could not be cloned inside its groups) and every mount happen here,
    /// before any request.
    ///
    /// - Returns: The parked jail, or the failed stage (pipes, cgroup, a clone or child stage) and errno.
    static func spawn(
        shape: JailShape, host: JailHostConfiguration, cgroups: CgroupManager?, network: EgressAvailability?,
        forkServer: ForkServer?, name: String
    ) -> Result<ParkedJail, SpawnFailure> {
        func pipe() throws(SpawnFailure) -> PipeDescriptors {
            do { return try PipeDescriptors() } catch { throw SpawnFailure(stage: EDGY_STAGE_PIPES, errno: error.rawValue) }
        }
        var stdinPipe: PipeDescriptors
        do { stdinPipe = try pipe() } catch { return .failure(error) }
        var stdoutPipe: PipeDescriptors
        do { stdoutPipe = try pipe() } catch { return .failure(error) }
        var stderrPipe: PipeDescriptors
        do { stderrPipe = try pipe() } catch { return .failure(error) }
        // Egress: a slot (addresses the child configures after its first gate) before the clone.
        var egress: EgressLease?
        if let rules = shape.egressRules {
            switch EgressLease.make(network, rules: rules) {
            case .success(let lease): egress = lease
            case .failure(let failure): return .failure(failure)
            }
        }
        var cgroup: JailCgroup?
        if let cgroups {
            let limits = CgroupLimits(memoryBytes: shape.memoryBytes, pidsMax: shape.pidsMax, cpuMaxCores: nil)
            do {
                cgroup = try cgroups.create(name: name, limits: limits)
            } catch {
                egress?.release()
                return .failure(SpawnFailure(stage: EDGY_STAGE_CGROUP, detail: "\(error)"))
            }
        }
        let stdio = (stdinPipe.readEnd, stdoutPipe.writeEnd, stderrPipe.writeEnd)
        // v1: the cloning thread (here, or the fork server's) joins the group for the clone, so
        // that the child starts inside and no attach (an RCU grace period) follows. It counts
        // against the pids limit meanwhile, hence at least 2.
        let joinsGroup = cgroup != nil && cgroup?.cloneIntoFD == nil && (shape.pidsMax ?? 2) >= 2
        func clone() -> Result<(edgy_pending, joinedCgroup: Bool), SpawnFailure> {
            start(
                shape: shape, host: host, stdio: stdio, cgroup: cgroup, egress: egress?.slot, forkServer: forkServer,
                joinGroup: joinsGroup)
        }
        var attached = false
        let started: Result<(edgy_pending, joinedCgroup: Bool), SpawnFailure>
        if forkServer == nil, joinsGroup, let cgroup, let cloned = cgroup.withCallingThreadInside(clone) {
            started = cloned.map { ($0.0, joinedCgroup: true) }
        } else {
            started = clone()
        }
        // The child has its copies; ours must go so that EOF means the jail closed them.
        closeDescriptor(stdinPipe.takeReadEnd())
        closeDescriptor(stdoutPipe.takeWriteEnd())
        closeDescriptor(stderrPipe.takeWriteEnd())
        // (On failure the pipes' remaining ends close when they go out of scope.)
        var pending: edgy_pending
        switch started {
        case .success(let cloned):
            pending = cloned.0
            attached = cloned.joinedCgroup
        case .failure(let failure):
            retire(cgroup)
            egress?.release()
            return .failure(failure)
        }
        if let egress, let failure = egress.plumb(pid: pending.pid) {
            edgy_spawn_abort(&pending)
            retire(cgroup)
            egress.release()
            return .failure(failure)
        }
        if let failure = prepare(&pending, shape: shape, cgroup: attached ? nil : cgroup) {
            retire(cgroup)
            egress?.release()
            return .failure(failure)
        }
        let mountNamespace = open("/proc/\(pending.pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        let workdir = shape.outputsWorkdir.map { open("/proc/\(pending.pid)/root\($0)", openPathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } ?? -1
        return .success(ParkedJail(
            pending: pending, stdinFD: stdinPipe.takeWriteEnd(), stdoutFD: stdoutPipe.takeReadEnd(),
            stderrFD: stderrPipe.takeReadEnd(), cgroup: cgroup, mountNamespaceFD: mountNamespace, workdirFD: workdir,
            egress: egress))
    }

    /// clone3 and the id maps, by the fork server or here: the child waits at its first gate.
    private static func start(
        shape: JailShape, host: JailHostConfiguration, stdio: (Int32, Int32, Int32), cgroup: JailCgroup?,
        egress: EgressSlot?, forkServer: ForkServer?, joinGroup: Bool
    ) -> Result<(edgy_pending, joinedCgroup: Bool), SpawnFailure> {
        var c = shape.cShape(host: host, stdio: stdio, cgroupFD: cgroup?.cloneIntoFD, egress: egress)
        var pending = edgy_pending()
        var record = edgy_child_error()
        var joinedCgroup = false
        // The child reads its copy of the filesystem plan, made at the clone (the fork server's
        // copy of the one it was sent).
        let started = shape.filesystem.withUnsafeBytes { raw -> Int32 in
            c.fs = raw.baseAddress?.assumingMemoryBound(to: edgy_fs_plan.self)
            if let forkServer {
                switch forkServer.start(&c, cgroup: joinGroup ? cgroup : nil) {
                case .started(let cloned, let joined):
                    pending = cloned
                    joinedCgroup = joined
                    return 0
                case .failed(let failure):
                    record = failure
                    return -1
                case .unavailable:
                    break  // cloned here instead; `ForkServer.lastError` says why
                }
            }
            return edgy_spawn_start(&c, &pending, &record)
        }
        guard started == 0 else {
            return .failure(SpawnFailure(stage: SetupStage(record: record), errno: record.err))
        }
        return .success((pending, joinedCgroup: joinedCgroup))
    }

    /// Joins `cgroup` (v1, where the clone could not start the child inside) and opens the first gate: the child builds
    /// the policy's filesystem and pivots into it now, so that the request path makes no mount.
    /// On failure the child is killed and reaped.
    private static func prepare(_ pending: inout edgy_pending, shape: JailShape, cgroup: JailCgroup?) -> SpawnFailure? {
        if let cgroup, cgroup.cloneIntoFD == nil {
            do {
                try cgroup.attach(pid: pending.pid)
            } catch {
                edgy_spawn_abort(&pending)
                return SpawnFailure(stage: EDGY_STAGE_CGROUP, detail: "\(error)")
            }
        }
        var record = edgy_child_error()
        pending.filter_while_parked = shape.filterWhileParked ? 1 : 0
        let result = edgy_spawn_prepare(&pending, &record)
        let failure = decodeSpawnResult(
            result, record: record, errno: errno, details: SpawnDetails(filesystemOps: shape.filesystemOps),
            lost: EDGY_STAGE_LOST_BEFORE_PREPARED, lostDetail: "the child died before its filesystem was built")
        if failure != nil { edgy_spawn_abort(&pending) }
        return failure
    }

    /// Kills and reaps the parked child, closes every fd, removes its cgroup.
    consuming func abort() {
        var pending = self.pending
        edgy_spawn_abort(&pending)
        for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { closeDescriptor(fd) }
        ParkedJail.retire(finished)
    }

    /// Writes the task plan into the jail's memfd and opens its second gate: the child applies it
    /// and execs. Its process and stdio move into the returned `JailProcess`; on failure the child
    /// has been reaped and its fds closed. The cgroup and mount namespace stay with `finished`,
    /// which the caller retires afterwards.
    consuming func release(blob: [UInt8], task: TaskPlan) -> Result<JailProcess, SpawnFailure> {
        var pending = self.pending
        pending.trace_without_listener = task.tracesWithoutListener ? 1 : 0
        var record = edgy_child_error()
        var lostErrno: Int32 = 0
        let result = blob.withUnsafeBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -1 }
            let released = edgy_spawn_release(&pending, base, raw.count, &record)
            lostErrno = errno
            return released
        }
        let process = JailProcess(pending: pending, stdin: stdinFD, stdout: stdoutFD, stderr: stderrFD)
        let details = SpawnDetails(taskOps: task.opDescriptions, program: task.program)
        guard let failure = decodeSpawnResult(
            result, record: record, errno: lostErrno, details: details,
            lost: EDGY_STAGE_LOST_AT_RELEASE, lostDetail: "the child died before it was released")
        else { return .success(process) }
        // A child that reported a failure exits by itself, unless its filter stops the exit: the
        // listener is ours and nobody answers it yet.
        process.kill()
        _ = process.reap()
        return .failure(failure)
    }

    /// What is left of a jail after its attempt.
    var finished: FinishedJail { FinishedJail(cgroup: cgroup, mountNamespaceFD: mountNamespaceFD, workdirFD: workdirFD, egress: egress) }

    /// Kills what is left in `cgroup` and removes it.
    static func retire(_ cgroup: JailCgroup?) {
        try? cgroup?.remove()
    }

    /// Drops the jail's mount namespace (unmounting its filesystem), removes its cgroup and its
    /// veth pair and rules.
    static func retire(_ jail: FinishedJail) {
        if jail.mountNamespaceFD >= 0 { closeDescriptor(jail.mountNamespaceFD) }
        if jail.workdirFD >= 0 { closeDescriptor(jail.workdirFD) }
        retire(jail.cgroup)
        jail.egress?.release()
    }
}

/// A jail whose processes are all dead: what the pool thread releases off the request path.
struct FinishedJail: Sendable {
    var cgroup: JailCgroup?
    var mountNamespaceFD: Int32
    var workdirFD: Int32
    var egress: EgressLease?
}
