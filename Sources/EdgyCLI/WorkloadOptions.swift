import ArgumentParser
import EdgyCgroup
import EdgyJail
import EdgyModel
import Foundation

/// What a command that runs one workload in process is given: host files, stdin, whether to use
/// cgroups, and the command. `edgy run` and `edgy policy learn` share it.
struct WorkloadOptions: ParsableArguments {
    @Option(name: .customLong("file"), help: "Put host file SRC at DEST (relative to the working directory) in the jail. Repeatable.")
    var files: [String] = []

    @Option(name: .long, help: "A file whose contents are the workload's stdin.")
    var stdin: String?

    @Flag(name: .long, help: "Run without cgroup limits (memory and pids then unenforced).")
    var noCgroup = false

    @Argument(parsing: .postTerminator, help: "The command and its arguments (after --). Default: the policy's command.")
    var command: [String] = []

    init() {}

    mutating func validate() throws {
        for spec in files where !spec.contains("=") {
            throw ValidationError("--file expects DEST=SRC, got `\(spec)`")
        }
    }

    /// A supervisor for this process's jails, with the host's cgroups unless told otherwise; a
    /// host that cannot jail ends the command with why.
    static func supervisor(cgroups: Bool) -> JailSupervisor {
        do {
            return try JailSupervisor(cgroups: cgroups ? try CgroupManager(host: try CgroupHost.detect()) : nil)
        } catch {
            fail("\(error)")
        }
    }
}

/// Host files named on the command line (`--file DEST=SRC`, `--stdin FILE`), read into memory:
/// a bad one ends the command with its name.
enum HostFiles {
    static func read(_ specs: [String]) -> [TaskFile] {
        specs.map { spec in
            let parts = spec.split(separator: "=", maxSplits: 1)
            let dest = String(parts[0]), source = parts.count > 1 ? String(parts[1]) : ""
            guard let data = FileManager.default.contents(atPath: source) else {
                fail("--file \(spec): cannot read \(source)")
            }
            let mode = ((try? FileManager.default.attributesOfItem(atPath: source)[.posixPermissions]) as? Int).map(UInt32.init) ?? 0o644
            return TaskFile(path: dest, contents: Array(data), mode: mode)
        }
    }

    static func readStdin(_ path: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { fail("--stdin: cannot read \(path)") }
        return Array(data)
    }
}
