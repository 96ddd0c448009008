import CEdgyJail
import EdgyModel
import EdgySeccomp
import EdgySystem

/// A setup stage, as C (`enum edgy_stage`) and Swift share it. Its name comes from C's one
/// table, so a report's `setup.stage` always names exactly one step.
typealias SetupStage = edgy_stage

extension SetupStage {
    /// The name reports show, e.g. "filesystem", "execve".
    var name: String { String(cString: edgy_stage_name(self)) }

    /// The stage of a child's error record (a raw number off the pipe).
    init(record: edgy_child_error) {
        self.init(rawValue: UInt32(bitPattern: record.stage))
    }
}

/// A failed step of a spawn: which stage, its errno, and what it was doing.
struct SpawnFailure: Error, Sendable {
    var stage: SetupStage
    var errno: Int32? = nil
    var detail: String? = nil

    /// The report's form: the stage by name, errno by symbol.
    var setupFailure: SetupFailure {
        SetupFailure(stage: stage.name, errno: errno.map(errnoName), detail: detail)
    }
}

/// What the op indices in a child's error record refer to: the descriptions of the plans it was
/// given, and the program it was to run.
struct SpawnDetails {
    var filesystemOps: [String] = []
    var taskOps: [String] = []
    var program: String? = nil

    /// The detail for a record of `stage`: the op it names, the program, the resource.
    func detail(for stage: SetupStage, index: Int32) -> String? {
        switch stage {
        case EDGY_STAGE_FS_OP, EDGY_STAGE_MOUNT_RECURSIVE: return Self.entry(filesystemOps, index)
        case EDGY_STAGE_TASK_FILE: return Self.entry(taskOps, index)
        case EDGY_STAGE_EXECVE: return program.map { "execve \($0)" }
        case EDGY_STAGE_RLIMIT: return "rlimit \(index)"
        case EDGY_STAGE_SETUP_DENIED where index >= 0:
            return "syscall \(SyscallNames.name(ofNativeSyscall: index) ?? String(index)) (the policy forbids it)"
        default: return nil
        }
    }

    private static func entry(_ list: [String], _ index: Int32) -> String? {
        index >= 0 && Int(index) < list.count ? list[Int(index)] : nil
    }
}

/// Decodes the result of `edgy_spawn_prepare` or `edgy_spawn_release`, the one place that reads
/// the C side's answer: 0 is success (nil); 1, a record the child wrote; -1, a child that died
/// without a word (`lost`, with the errno the parent saw).
func decodeSpawnResult(
    _ result: Int32, record: edgy_child_error, errno: Int32, details: SpawnDetails,
    lost: SetupStage, lostDetail: String
) -> SpawnFailure? {
    switch result {
    case 0:
        return nil
    case 1:
        let stage = SetupStage(record: record)
        return SpawnFailure(stage: stage, errno: record.err, detail: details.detail(for: stage, index: record.op_index))
    default:
        return SpawnFailure(stage: lost, errno: errno, detail: lostDetail)
    }
}
