import CEdgyJail
import EdgyCgroup
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgySeccomp
import EdgySystem
import Glibc

/// One attempt, start to reap, on its own thread: plans → a parked or new jail → release →
/// supervision → reap and report.
struct Attempt {
    let supervisor: SupervisorCore
    let request: JailRequest
    let cancelFD: Int32
    let onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    var report: AttemptReport

    init(
        supervisor: SupervisorCore, request: JailRequest, cancelFD: Int32,
        onOutput: (@Sendable (OutputStreamKind, ArraySlice<UInt8>) -> Void)?
    ) {
        self.supervisor = supervisor
        self.request = request
        self.cancelFD = cancelFD
        self.onOutput = onOutput
        self.report = AttemptReport(
            outcome: .setupError, startedAt: wallClockSeconds(), policyName: request.policy.name,
            policyDigest: request.policyDigest)
    }

    mutating func setupFailed(_ failure: SpawnFailure) -> AttemptReport {
        report.setup = failure.setupFailure
        report.outcome = .setupError
        report.finishedAt = wallClockSeconds()
        return report
    }

    mutating func run() -> AttemptReport {
        let plans: JailPlans
        switch makePlans() {
        case .success(let made): plans = made
        case .failure(let failure): return setupFailed(failure)
        }
        let blob = plans.task.blob()

        // A parked jail of this shape (its filesystem built) if the pool has one; else clone one
        // here (paying the cgroup mkdirs, on v1 the attach, and every mount).
        var shape = JailShape(policy: request.policy, cgroups: supervisor.cgroups != nil, filesystem: plans.filesystem)
        shape.extraMountSources = request.extraMounts.map(\.source)
        if request.readsWorkdir { shape.outputsWorkdir = request.policy.run.workdir }
        let pool = supervisor.pool
        let jail: ParkedJail
        switch acquire(shape) {
        case .success(let taken): jail = taken
        case .failure(let failure): return setupFailed(failure)
        }
        let cgroup = jail.cgroup
        let finished = jail.finished
        var cgroupEmptied = false
        defer {
            // The jail's processes are dead (reaped, or killed with the group); the directory
            // removal waits for an RCU grace period on v1, so the pool thread does it.
            if let cgroup, !cgroupEmptied && !cgroup.isEmpty() { cgroup.kill() }
            if let pool { pool.retire(finished) } else { ParkedJail.retire(finished) }
            if pool != nil, request.keepsShapeWarm { pool?.refill(shape) }
        }

        var process: JailProcess
        switch jail.release(blob: blob, task: plans.task) {
        case .success(let released): process = released
        case .failure(let failure): return setupFailed(failure)
        }
        let execStart = monotonicNanos()
        report.startedAt = wallClockSeconds()

        var pump = OutputPump(stdio: process.takeStdio(), stdinData: request.stdin, limits: request.policy.limits, onOutput: onOutput)
        var supervision = Supervision(limits: request.policy.limits, cancelFD: cancelFD, cgroup: cgroup, execStart: execStart)
        if request.learner != nil {
            supervision.learning = LearningObserver(
                policy: request.policy, program: plans.task.program, execStart: execStart, traced: process.tracer != nil)
        }
        supervision.run(process, pump: &pump)
        if let learner = request.learner, let learned = supervision.learning?.use { learner.store(learned) }
        pump.finish(into: &report)

        var facts = supervision.facts
        let exit = process.reap()
        facts.exitCode = exit.exitCode
        facts.signal = exit.signal
        report.wallMs = Int((monotonicNanos() - execStart) / 1_000_000)
        report.finishedAt = wallClockSeconds()
        report.cpuUserMs = Int(exit.usage.ru_utime.tv_sec) * 1000 + Int(exit.usage.ru_utime.tv_usec) / 1000
        report.cpuSysMs = Int(exit.usage.ru_stime.tv_sec) * 1000 + Int(exit.usage.ru_stime.tv_usec) / 1000
        report.maxRssKib = Int(exit.usage.ru_maxrss)
        if let cgroup {
            collect(cgroup, into: &facts)
            cgroupEmptied = true
        }
        if let egress = finished.egress { report.network = egress.host.report(egress.slot) }
        if request.collectsOutputs {
            // Every process of the jail is dead (PID 1's exit ended its namespace): nothing changes
            // the files while they are read.
            if finished.workdirFD >= 0 {
                let collector = OutputCollector(request.policy.outputs, task: request.outputPatterns)
                (report.outputs, report.outputContents) = collector.collect(workdir: finished.workdirFD)
            } else {
                report.outputs = OutputsReport(error: "the working directory was not held open, so no file was collected")
            }
        }
        if request.keepsWorkspace && finished.workdirFD >= 0 {
            report.workspace = OutputCollector.workspace(workdir: finished.workdirFD, limits: request.policy.limits)
        }
        report.exitCode = facts.exitCode
        report.signal = facts.signal
        report.signalName = facts.signal.map(signalName)
        report.outcome = classify(facts)
        report.seccompSyscall = supervision.seccompSyscall
        if report.outcome == .seccompViolation && process.seccompListener < 0 {
            // The filter killed by itself (no listener): only the kernel's audit log can say.
            report.seccompSyscall = SeccompAudit.violatingSyscall(pid: process.pid)
        }
        return report
    }

    /// The seccomp program and both plans; nothing is spawned yet.
    private func makePlans() -> Result<JailPlans, SpawnFailure> {
        let seccomp: SeccompProgram
        do {
            seccomp = request.learner != nil
                ? try SeccompCompiler.compileLearning() : try SeccompCompiler.cached(request.policy.seccomp)
        } catch {
            return .failure(SpawnFailure(stage: EDGY_STAGE_SECCOMP_COMPILE, detail: "\(error)"))
        }
        do {
            return .success(try PlanBuilder(host: supervisor.host, filesystemPlans: supervisor.filesystemPlans).build(
                request, seccomp: seccomp, lastCap: supervisor.lastCap))
        } catch {
            return .failure(SpawnFailure(stage: EDGY_STAGE_PLAN, detail: error.message))
        }
    }

    /// A parked jail of `shape` from the pool, or one spawned now.
    private func acquire(_ shape: JailShape) -> Result<ParkedJail, SpawnFailure> {
        if let parked = supervisor.pool?.take(shape) { return .success(parked) }
        switch ParkedJail.spawn(
            shape: shape, host: supervisor.host, cgroups: supervisor.cgroups, network: supervisor.network,
            forkServer: supervisor.forkServer, name: JailName.next("jail")) {
        case .success(let spawned):
            return .success(spawned)
        case .failure(let failure):
            if request.keepsShapeWarm { supervisor.pool?.refill(shape) }
            return .failure(failure)
        }
    }

    /// The group's counters into the report. Every process of the jail is dead by now: the jail's
    /// PID 1 is reaped, and its exit killed its PID namespace, whose last process the kernel reaps
    /// before it reports PID 1's exit. The group's check for strays (and the v1 freeze/kill/thaw)
    /// runs when the jail is retired (`JailCgroup.remove`), on the pool's thread, right after.
    private mutating func collect(_ cgroup: JailCgroup, into facts: inout TerminationFacts) {
        let stats = cgroup.stats()
        report.memoryPeakBytes = stats.memoryPeakBytes
        report.oomKills = stats.oomKills
        report.pidsPeak = stats.pidsPeak
        report.pidsLimitHits = stats.pidsLimitHits
        facts.oomKills = stats.oomKills
        // The group's CPU time includes descendants killed with it, which rusage misses.
        if let user = stats.cpuUserNanos { report.cpuUserMs = max(report.cpuUserMs, Int(user / 1_000_000)) }
        if let system = stats.cpuSystemNanos { report.cpuSysMs = max(report.cpuSysMs, Int(system / 1_000_000)) }
    }
}
