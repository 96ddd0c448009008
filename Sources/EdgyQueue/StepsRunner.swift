import EdgyJail
import EdgyJudge
import EdgyModel
import EdgyPolicy
import EdgyStore
import Foundation

/// Runs a multi-step task's steps in order, each in its own jail (fresh namespaces, cgroup and
/// tmpfs), all from one workspace: after a `run` step every regular file of its working directory
/// is read back into memory and written into the next step's, so what `build` writes is there for
/// `run` and nothing of it touches the host's disk. A `cases` step runs its command once per case,
/// each from the same workspace, and grades each case's stdout.
struct StepsRunner: Sendable {
    let runner: any JailRunner
    /// The policy as loaded: each step's limits are the task's and its own over these.
    let loaded: Policy
    let taskLimits: LimitOverrides
    let forwarder: OutputForwarder

    /// The attempt's report: the last jail's ending and output at the top (so `exit_code` and
    /// `stdout` read as for one command), every step's report in `steps`, the cases in `cases`,
    /// the final workspace's output files in `outputs`. A setup error or a cancel ends it at once
    /// with that outcome.
    func run(_ base: JailRequest, steps: [StepSpec], dependencies: DependencyReport?) async -> AttemptReport {
        var workspace = Workspace(files: base.files)
        /// One per step that ran, in order.
        var reports: [StepReport] = []
        var summary: CasesSummary?
        var last: AttemptReport?
        var stopped = false
        // A task that declares dependencies without a step for them gets one, first.
        var implicit: StepReport?
        if let dependencies, steps.first?.kind != .dependencies {
            implicit = StepReport(name: "dependencies", kind: .dependencies, status: .succeeded, dependencies: dependencies)
            event(.step, ["index": -1, "name": "dependencies", "kind": "dependencies", "state": "finished", "status": "succeeded"])
        }

        func finish(_ top: AttemptReport?, outcome: Outcome? = nil) -> AttemptReport {
            var report = top ?? AttemptReport(outcome: outcome ?? .exited, policyName: base.policy.name, policyDigest: base.policyDigest)
            if top == nil && outcome == nil { report.exitCode = 0 }
            if let outcome { report.outcome = outcome }
            report.workspace = nil
            report.dependencies = dependencies
            let skipped = steps.dropFirst(reports.count).map { StepReport(name: $0.name, kind: $0.kind, status: .skipped) }
            report.steps = (implicit.map { [$0] } ?? []) + reports + skipped
            report.cases = summary
            if base.policy.outputs.enabled && base.outputPatterns?.isEmpty != true {
                (report.outputs, report.outputContents) = workspace.outputs(base.policy.outputs, task: base.outputPatterns)
            }
            return report
        }

        for (index, step) in steps.enumerated() {
            if stopped || Task.isCancelled { break }
            event(.step, ["index": index, "name": step.name, "kind": step.kind.rawValue, "state": "started"])
            var stepReport = StepReport(name: step.name, kind: step.kind, status: .succeeded)
            switch step.kind {
            case .dependencies:
                stepReport.dependencies = dependencies
            case .run:
                var request = request(base, step: step, files: workspace.files)
                request.stdin = step.stdin
                request.keepsWorkspace = true
                var report = await runner.run(request) { [forwarder] kind, bytes in forwarder.send(kind, bytes) }
                if let kept = report.workspace, !kept.complete, report.outcome != .setupError && report.outcome != .cancelled {
                    report.outcome = .setupError
                    report.setup = SetupFailure(stage: "workspace", errno: nil, detail: "step \(step.name)'s working directory could not be read back in time")
                }
                if let kept = report.workspace { workspace = kept }
                report.workspace = nil
                if report.outcome == .setupError || report.outcome == .cancelled {
                    // The attempt ends here; this step's report says why.
                    reports.append(StepReport(name: step.name, kind: step.kind, status: .failed, report: report))
                    return finish(report)
                }
                stepReport.status = report.outcome == .exited && report.exitCode == 0 ? .succeeded : .failed
                stepReport.report = report
                last = report
            case .cases:
                var stepSummary = CasesSummary(total: step.cases.count)
                var cases: [CaseReport] = []
                var interrupted: AttemptReport?
                for (caseIndex, spec) in step.cases.enumerated() {
                    if Task.isCancelled { break }
                    var request = request(base, step: step, files: workspace.files)
                    request.stdin = spec.stdin
                    let report = await runner.run(request, onOutput: nil)
                    if report.outcome == .setupError || report.outcome == .cancelled {
                        interrupted = report
                        break
                    }
                    let graded = grade(report, spec: spec, index: caseIndex)
                    cases.append(graded)
                    stepSummary.add(graded, step: step.name)
                    last = report
                    event(.testCase, [
                        "step": index, "step_name": step.name, "index": caseIndex, "verdict": graded.verdict.rawValue,
                        "wall_ms": graded.wallMs, "cpu_ms": graded.cpuMs, "memory_peak_bytes": graded.memoryPeakBytes ?? 0,
                    ])
                    if graded.verdict != .accepted && step.stopOnFirstFailure { break }
                }
                stepReport.cases = cases
                stepReport.summary = stepSummary
                stepReport.status = interrupted == nil && stepSummary.passed == stepSummary.total ? .succeeded : .failed
                summary = merged(summary, stepSummary)
                if let interrupted {
                    // The attempt ends here; the cases that ran are reported.
                    reports.append(stepReport)
                    return finish(interrupted)
                }
            }
            reports.append(stepReport)
            event(.step, ["index": index, "name": step.name, "kind": step.kind.rawValue, "state": "finished", "status": stepReport.status.rawValue])
            if stepReport.status == .failed && !step.continueOnFailure { stopped = true }
        }
        if Task.isCancelled { return finish(last, outcome: .cancelled) }
        return finish(last)
    }

    /// The step's jail request: the workspace's files, the step's command and limits.
    func request(_ base: JailRequest, step: StepSpec, files: [TaskFile]) -> JailRequest {
        var request = base
        request.files = files
        // Checked at submission; a policy reloaded since then decides again.
        request.command = base.policy.run.allowCommandOverride ? step.command : nil
        request.outputPatterns = []
        let overrides = taskLimits.merging(step.limits)
        if !step.limits.isEmpty, let limits = try? loaded.limits.applying(overrides) {
            request.policy.limits = limits
            request.limitsOverridden = limits != loaded.limits
        }
        return request
    }

    func grade(_ report: AttemptReport, spec: CaseSpec, index: Int) -> CaseReport {
        let (verdict, detail) = Judge.grade(report, expected: spec.expectedStdout, comparator: spec.comparator)
        let excerpt = CaseReport.excerptBytes
        return CaseReport(
            index: index, name: spec.name, verdict: verdict, outcome: report.outcome, exitCode: report.exitCode,
            signalName: report.signalName, seccompSyscall: report.seccompSyscall, detail: detail, wallMs: report.wallMs,
            cpuMs: report.cpuUserMs + report.cpuSysMs, memoryPeakBytes: report.memoryPeakBytes,
            stdout: AttemptReport.storableText(Array(report.stdout.prefix(excerpt))),
            stderr: AttemptReport.storableText(Array(report.stderr.prefix(excerpt))),
            stdoutOmittedBytes: UInt64(max(0, report.stdout.count - excerpt)) + report.stdoutTruncatedBytes)
    }

    private func merged(_ total: CasesSummary?, _ step: CasesSummary) -> CasesSummary {
        var total = total ?? CasesSummary()
        total.merge(step)
        return total
    }

    private func event(_ kind: TaskEvent.Kind, _ fields: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        forwarder.send(event: kind, json: Array(data))
    }
}
