import EdgyJail
import EdgyModel
import EdgyPolicy
import EdgyQueue
import EdgyStore
import EdgyTestSupport
import Foundation
import Testing

/// Multi-step tasks through the worker pool, in real jails: a build step, then cases graded.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(5)))
struct StepsTests {
    typealias Harness = WorkerPoolTests.Harness

    static func shipped(_ name: String) throws -> Policy {
        try PolicyLoader.load(name: name, directory: TestSupport.repositoryRoot + "/policies").policy
    }

    /// Reads a mode and two numbers; `sum` prints their sum, the others misbehave on purpose.
    static let program = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int main(void) {
            char mode[16]; long a, b;
            if (scanf("%15s %ld %ld", mode, &a, &b) != 3) return 2;
            if (!strcmp(mode, "wrong")) { printf("%ld\\n", a + b + 1); return 0; }
            if (!strcmp(mode, "spin")) { for (volatile long i = 0;; i++) {} }
            if (!strcmp(mode, "hog")) {
                for (;;) { char *p = malloc(1 << 20); if (!p) return 3; memset(p, 1, 1 << 20); }
            }
            if (!strcmp(mode, "loud")) { for (long i = 0; i < 100000; i++) printf("%ld\\n", i); return 0; }
            printf("%ld\\n", a + b);
            return 0;
        }
        """

    static let build = StepSpec(name: "build", command: ["/usr/bin/gcc", "-O2", "-o", "prog", "main.c"])

    static func cases(_ inputs: [(String, Int, Int)]) -> [CaseSpec] {
        inputs.map { mode, a, b in CaseSpec(stdin: Array("\(mode) \(a) \(b)\n".utf8), expectedStdout: Array("\(a + b)\n".utf8)) }
    }

    static func task(_ steps: [StepSpec], files: [TaskFile] = [TaskFile(path: "main.c", contents: Array(program.utf8))]) -> TaskSpec {
        TaskSpec(name: "graded", policy: "c", files: files, maxAttempts: 1, steps: steps)
    }

    static func steps(of task: TaskRecord) -> [StepReport] { task.lastReport?.steps ?? [] }

    @Test func aCProgramCompiledOnceRunsFiftyCasesAllAccepted() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")])
        try await harness.withRunningPool {
            let inputs = (0..<50).map { ("sum", $0, $0 * 7) }
            let run = StepSpec(name: "run", kind: .cases, command: ["./prog"], cases: Self.cases(inputs))
            let id = try await harness.submit(Self.task([Self.build, run]))
            let task = try await harness.finished(id, timeout: .seconds(120))
            #expect(task.status == .succeeded, "\(String(describing: task.lastReport?.steps))")
            let steps = Self.steps(of: task)
            #expect(steps.map(\.status) == [.succeeded, .succeeded])
            #expect(steps.first?.report?.exitCode == 0)
            let cases = try #require(steps.last?.cases)
            #expect(cases.count == 50)
            #expect(cases.allSatisfy { $0.verdict == .accepted })
            #expect(cases[7].stdout == "56\n")
            let summary = try #require(task.lastReport?.cases)
            #expect(summary.total == 50 && summary.run == 50 && summary.passed == 50 && summary.firstFailure == nil)
            // The maxima over the cases (a fast case may take under a millisecond of wall time).
            #expect(summary.maxWallMs == cases.map(\.wallMs).max())
            #expect(summary.maxCpuMs == cases.map(\.cpuMs).max())
            #expect(summary.maxMemoryBytes == cases.compactMap(\.memoryPeakBytes).max() && summary.maxMemoryBytes > 0)
            // Step and case events, in order, for SSE.
            let events = try await harness.store.events(taskID: id, after: 0, limit: 1000)
            let progress = events.filter { $0.kind == .step || $0.kind == .testCase }
            #expect(progress.count == 4 + 50)
            #expect(progress.first?.data.contains(#""state":"started""#) == true)
            #expect(progress.filter { $0.kind == .testCase }.allSatisfy { $0.data.contains(#""verdict":"accepted""#) })
        }
    }

    @Test func wrongAnswersTimeAndMemoryLimitsGetTheirVerdicts() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")])
        try await harness.withRunningPool {
            var run = StepSpec(
                name: "run", kind: .cases, command: ["./prog"],
                limits: LimitOverrides(wallTimeS: 1, cpuTimeS: 1, memoryMib: 32),
                cases: Self.cases([("sum", 1, 2), ("wrong", 1, 2), ("spin", 0, 0), ("hog", 0, 0)]))
            run.cases[0].name = "small"
            let id = try await harness.submit(Self.task([Self.build, run]))
            let task = try await harness.finished(id, timeout: .seconds(120))
            #expect(task.status == .failed)
            let cases = try #require(Self.steps(of: task).last?.cases)
            #expect(cases.map(\.verdict) == [.accepted, .wrongAnswer, .timeLimit, .memoryLimit])
            #expect(cases[0].name == "small")
            #expect(cases[1].detail == #"line 1: expected "3", got "4""#)
            let summary = try #require(task.lastReport?.cases)
            #expect(summary.passed == 1 && summary.run == 4)
            #expect(summary.firstFailure == CasesSummary.Failure(step: "run", index: 1, verdict: .wrongAnswer))
            #expect(summary.maxWallMs >= 900)
        }
    }

    @Test func stopOnFirstFailureStopsAfterTheFirstFailure() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")])
        try await harness.withRunningPool {
            let run = StepSpec(
                name: "run", kind: .cases, command: ["./prog"], stopOnFirstFailure: true,
                cases: Self.cases([("sum", 1, 1), ("wrong", 1, 1), ("sum", 2, 2), ("sum", 3, 3)]))
            let after = StepSpec(name: "after", command: ["/bin/true"])
            let id = try await harness.submit(Self.task([Self.build, run, after]))
            let task = try await harness.finished(id, timeout: .seconds(120))
            #expect(task.status == .failed)
            let steps = Self.steps(of: task)
            #expect(steps.map(\.status) == [.succeeded, .failed, .skipped])
            #expect(steps[1].cases?.map(\.verdict) == [.accepted, .wrongAnswer])
            #expect(steps[1].summary?.total == 4)
            #expect(steps[1].summary?.run == 2)
        }
    }

    @Test func aFileWrittenByOneStepIsThereForTheNextAndFailuresStopUnlessAllowed() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")])
        try await harness.withRunningPool {
            let steps = [
                StepSpec(name: "write", command: ["/bin/sh", "-c", "mkdir -p deep/er && echo built > deep/er/file && chmod 700 deep/er/file"]),
                StepSpec(name: "fail", command: ["/bin/sh", "-c", "exit 3"], continueOnFailure: true),
                StepSpec(name: "read", command: ["/bin/sh", "-c", "cat deep/er/file; stat -c %a deep/er/file"]),
                StepSpec(name: "fail-hard", command: ["/bin/false"]),
                StepSpec(name: "never", command: ["/bin/true"]),
            ]
            let id = try await harness.submit(Self.task(steps, files: [TaskFile(path: "main.c", contents: [])]))
            let task = try await harness.finished(id, timeout: .seconds(60))
            #expect(task.status == .failed)
            let reports = Self.steps(of: task)
            #expect(reports.map(\.status) == [.succeeded, .failed, .succeeded, .failed, .skipped])
            #expect(reports[1].report?.exitCode == 3)
            #expect(reports[2].report?.stdoutText == "built\n700\n")
        }
    }

    @Test func aSetupErrorInAStepEndsTheAttemptAndNamesTheStep() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")])
        try await harness.withRunningPool {
            let steps = [
                StepSpec(name: "fine", command: ["/bin/true"]),
                StepSpec(name: "missing", command: ["/nonexistent/tool"]),
                StepSpec(name: "after", command: ["/bin/true"]),
            ]
            let id = try await harness.submit(Self.task(steps, files: [TaskFile(path: "main.c", contents: [])]))
            let task = try await harness.finished(id, timeout: .seconds(60))
            #expect(task.status == .failed)
            #expect(task.lastReport?.outcome == .setupError)
            let reports = Self.steps(of: task)
            #expect(reports.map(\.status) == [.succeeded, .failed, .skipped])
            #expect(reports[1].report?.setup?.description.contains("/nonexistent/tool") == true, "\(String(describing: reports[1].report?.setup))")
        }
    }

    @Test func oneTasksStepsNeverSeeAnotherTasksWorkspace() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")], workers: 2)
        try await harness.withRunningPool {
            func task(_ mine: String) -> TaskSpec {
                Self.task([
                    StepSpec(name: "write", command: ["/bin/sh", "-c", "echo \(mine) > \(mine).txt; sleep 0.5"]),
                    StepSpec(name: "list", command: ["/bin/sh", "-c", "sleep 0.2; ls -A"]),
                ], files: [TaskFile(path: "main.c", contents: [])])
            }
            let a = try await harness.submit(task("alpha"))
            let b = try await harness.submit(task("bravo"))
            let first = try await harness.finished(a, timeout: .seconds(60))
            let second = try await harness.finished(b, timeout: .seconds(60))
            #expect(Self.steps(of: first).last?.report?.stdoutText == "alpha.txt\nmain.c\n")
            #expect(Self.steps(of: second).last?.report?.stdoutText == "bravo.txt\nmain.c\n")
        }
    }

    @Test func aPerCaseOutputCapIsApplied() async throws {
        let harness = try Harness(policies: [try Self.shipped("c")])
        try await harness.withRunningPool {
            let run = StepSpec(
                name: "run", kind: .cases, command: ["./prog"], limits: LimitOverrides(stdoutKib: 4),
                cases: Self.cases([("loud", 0, 0), ("sum", 4, 5)]))
            let id = try await harness.submit(Self.task([Self.build, run]))
            let task = try await harness.finished(id, timeout: .seconds(120))
            let cases = try #require(Self.steps(of: task).last?.cases)
            #expect(cases.map(\.verdict) == [.outputLimit, .accepted])
            #expect(cases[0].stdout.utf8.count <= CaseReport.excerptBytes)
            #expect(cases[0].stdoutOmittedBytes > 0)
        }
    }
}
