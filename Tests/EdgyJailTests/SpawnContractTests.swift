import CEdgyJail
@testable import EdgyJail
import EdgyModel
import Glibc
import Testing

/// The contract between the C spawn and Swift: one name per stage, one decoder of the result.
struct SpawnContractTests {
    /// Every stage the C enum defines has its own name; numbers it does not define are "unknown".
    @Test func everyStageHasADistinctName() {
        let names = (1...255).map { SetupStage(rawValue: UInt32($0)).name }.filter { $0 != "unknown" }
        #expect(names.count == 49)
        #expect(Set(names).count == names.count, "\(names)")
        #expect(SetupStage(rawValue: 300).name == "unknown")
    }

    @Test func theTwoSeccompAndGateMeaningsAreApart() {
        #expect(EDGY_STAGE_SECCOMP_COMPILE.name == "seccomp compile")
        #expect(EDGY_STAGE_SECCOMP_LOAD.name == "seccomp load")
        #expect(EDGY_STAGE_FIRST_GATE.name != EDGY_STAGE_SECOND_GATE.name)
        #expect(EDGY_STAGE_PLAN.name == "plan")
        #expect(EDGY_STAGE_TASK_PLAN_MAP.name != EDGY_STAGE_PLAN.name)
    }

    static let details = SpawnDetails(
        filesystemOps: ["mkdir /usr", "mount /usr"], taskOps: ["write /work/a"], program: "/bin/nope")

    static func record(_ stage: SetupStage, err: Int32, index: Int32 = -1) -> edgy_child_error {
        edgy_child_error(stage: Int32(stage.rawValue), err: err, op_index: index, listener_fd: -1)
    }

    static func decode(_ result: Int32, _ record: edgy_child_error) -> SpawnFailure? {
        decodeSpawnResult(
            result, record: record, errno: EPIPE, details: details, lost: EDGY_STAGE_LOST_AT_RELEASE,
            lostDetail: "gone")
    }

    @Test func aStartStoppedByTheParkedFilterNamesTheSyscall() {
        let failure = Self.decode(1, Self.record(EDGY_STAGE_SETUP_DENIED, err: EPERM, index: 95))
        #expect(failure?.stage == EDGY_STAGE_SETUP_DENIED)
        #expect(failure?.detail == "syscall umask (the policy forbids it)")
    }

    @Test func successDecodesToNoFailure() {
        #expect(Self.decode(0, edgy_child_error()) == nil)
    }

    @Test func aRecordNamesItsOp() throws {
        let mount = try #require(Self.decode(1, Self.record(EDGY_STAGE_FS_OP, err: ENOENT, index: 1)))
        #expect(mount.setupFailure == SetupFailure(stage: "filesystem", errno: "ENOENT", detail: "mount /usr"))
        let recursive = try #require(Self.decode(1, Self.record(EDGY_STAGE_MOUNT_RECURSIVE, err: EINVAL, index: 0)))
        #expect(recursive.setupFailure.description == "mkdir /usr: EINVAL")
        let file = try #require(Self.decode(1, Self.record(EDGY_STAGE_TASK_FILE, err: ENOSPC, index: 0)))
        #expect(file.setupFailure.description == "write /work/a: ENOSPC")
        let exec = try #require(Self.decode(1, Self.record(EDGY_STAGE_EXECVE, err: ENOENT)))
        #expect(exec.setupFailure.description == "execve /bin/nope: ENOENT")
        let rlimit = try #require(Self.decode(1, Self.record(EDGY_STAGE_RLIMIT, err: EPERM, index: 7)))
        #expect(rlimit.setupFailure.description == "rlimit 7: EPERM")
    }

    /// An index the plan does not have is no detail, never a trap.
    @Test func anOutOfRangeIndexHasNoDetail() throws {
        for index: Int32 in [-1, 2, 1000, .max] {
            let failure = try #require(Self.decode(1, Self.record(EDGY_STAGE_FS_OP, err: ENOENT, index: index)))
            #expect(failure.detail == nil)
        }
    }

    @Test func aChildLostWithoutAWordIsTheCallersStage() throws {
        let lost = try #require(Self.decode(-1, edgy_child_error()))
        #expect(lost.setupFailure == SetupFailure(stage: "child lost at release", errno: "EPIPE", detail: "gone"))
    }
}
