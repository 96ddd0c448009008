import EdgyJudge
import EdgyModel
import EdgyPolicy
import EdgyStore
import EdgyTaskJSON

/// How large a multi-step task may be. Every byte of its cases also counts against `max_task_mib`.
public enum StepLimits {
    public static let maxSteps = 16
    /// Over all of a task's steps.
    public static let maxCases = 1000
    public static let maxExpectedBytes = 1 << 20
}

extension TaskDraft {
    /// `steps` checked against the policy, each error naming its field (`steps[2].command`).
    func checkSteps(policy: Policy, policyName: String, files: TaskFileSet) throws(APIError) -> [StepSpec]? {
        guard let steps else { return nil }
        guard command == nil else { throw APIError.badRequest("give command or steps, not both", field: "command") }
        guard stdin == nil else { throw APIError.badRequest("give stdin to the steps that read it, not to the task", field: "stdin") }
        guard !steps.isEmpty else { throw APIError.badRequest("steps must list at least one step", field: "steps") }
        guard steps.count <= StepLimits.maxSteps else {
            throw APIError.badRequest("a task may have at most \(StepLimits.maxSteps) steps", field: "steps")
        }
        var names = Set<String>()
        var caseCount = 0
        var checked: [StepSpec] = []
        for (i, body) in steps.enumerated() {
            let field = "steps[\(i)]"
            guard !body.name.isEmpty, body.name.utf8.count <= 64,
                  body.name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) })
            else {
                throw APIError.badRequest("a step's name is 1 to 64 letters, digits, '-', '_' or '.'", field: "\(field).name")
            }
            guard names.insert(body.name).inserted else { throw APIError.badRequest("step name \(body.name) is used twice", field: "\(field).name") }
            if body.type == .dependencies {
                try checkDependencyStep(body, at: i, policy: policy, policyName: policyName, files: files)
                checked.append(StepSpec(name: body.name, kind: .dependencies))
                continue
            }
            if let command = body.command {
                try Self.checkCommandOverride(command, policy: policy, policyName: policyName, field: "\(field).command")
            } else {
                try Self.checkPolicyCommand(policy: policy, policyName: policyName, files: files, field: "\(field).command")
            }
            let limits = body.limits?.overrides ?? LimitOverrides()
            do throws(PolicyOverrideError) {
                _ = try policy.limits.applying(self.limits.merging(limits))
            } catch {
                throw APIError.unprocessable("limit_not_allowed", error.description, field: "\(field).limits.\(error.key)")
            }
            if let tolerance = body.tolerance, !(tolerance >= 0 && tolerance <= 1) {
                throw APIError.badRequest("tolerance must be a number from 0 to 1", field: "\(field).tolerance")
            }
            var step = StepSpec(
                name: body.name, kind: body.cases == nil ? .run : .cases, command: body.command,
                stdin: Array((body.stdin ?? "").utf8), limits: limits,
                continueOnFailure: body.continueOnFailure, stopOnFirstFailure: body.stopOnFirstFailure)
            if let cases = body.cases {
                guard !cases.isEmpty else { throw APIError.badRequest("cases must list at least one case, or be left out", field: "\(field).cases") }
                caseCount += cases.count
                guard caseCount <= StepLimits.maxCases else {
                    throw APIError.badRequest("a task may have at most \(StepLimits.maxCases) cases in all", field: "\(field).cases")
                }
                guard body.stdin == nil else { throw APIError.badRequest("a step with cases takes each case's stdin", field: "\(field).stdin") }
                for (j, caseBody) in cases.enumerated() {
                    step.cases.append(try Self.checkCase(caseBody, defaults: (body.comparator, body.tolerance), field: "\(field).cases[\(j)]"))
                }
            } else if body.stopOnFirstFailure || body.comparator != nil || body.tolerance != nil {
                // Defaults for cases that are not there: a mistake, not a no-op.
                throw APIError.badRequest("stop_on_first_failure, comparator and tolerance belong to a step with cases", field: field)
            }
            checked.append(step)
        }
        return checked
    }

    /// A case, its comparator and tolerance defaulting to its step's.
    private static func checkCase(_ body: CaseBody, defaults: (ComparatorName?, Double?), field: String) throws(APIError) -> CaseSpec {
        if let name = body.name, name.isEmpty || name.utf8.count > 200 || name.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw APIError.badRequest("a case's name is 1 to 200 bytes without control characters", field: "\(field).name")
        }
        let expected = Array(body.expectedStdout.utf8)
        guard expected.count <= StepLimits.maxExpectedBytes else {
            throw APIError.tooLarge("expected_stdout may be at most \(StepLimits.maxExpectedBytes) bytes", field: "\(field).expected_stdout")
        }
        let tolerance = body.tolerance ?? defaults.1
        let comparator: CaseComparator
        switch body.comparator ?? defaults.0 ?? .exact {
        case .exact: comparator = .exact
        case .trim: comparator = .trim
        case .regex: comparator = .regex
        case .float: comparator = .float(tolerance: tolerance ?? CaseComparator.defaultTolerance)
        }
        if body.tolerance != nil, comparator.name != "float" {
            throw APIError.badRequest("tolerance goes with the float comparator", field: "\(field).tolerance")
        }
        if let problem = Judge.check(expected, comparator: comparator) {
            throw APIError.badRequest(problem, field: comparator == .regex ? "\(field).expected_stdout" : "\(field).tolerance")
        }
        return CaseSpec(name: body.name, stdin: Array((body.stdin ?? "").utf8), expectedStdout: expected, comparator: comparator)
    }

    /// Only first, and only where the policy installs dependencies and the task declares some.
    private func checkDependencyStep(_ body: StepBody, at index: Int, policy: Policy, policyName: String, files: TaskFileSet) throws(APIError) {
        let field = "steps[\(index)]"
        guard index == 0 else { throw APIError.badRequest("a dependencies step can only be the first", field: "\(field).type") }
        guard policy.dependencies.enabled else {
            throw APIError.unprocessable("dependencies_not_allowed", "policy \(policyName) takes no dependencies", field: "\(field).type")
        }
        guard files.contains(policy.dependencies.manifest) else {
            throw APIError.badRequest("a dependencies step needs dependencies or a \(policy.dependencies.manifest) file", field: "\(field).type")
        }
        guard body.command == nil, body.stdin == nil, body.limits == nil, body.cases == nil, !body.continueOnFailure else {
            throw APIError.badRequest("a dependencies step takes only a name: the policy says how to install", field: field)
        }
    }
}
