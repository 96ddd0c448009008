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
            return try makeSupervisor(cgroups: cgroups)
        } catch {
            fail(error.message)
        }
    }

    /// A supervisor on `host`, with the host's cgroups unless told otherwise; or why the host cannot jail.
    static func makeSupervisor(cgroups: Bool, host: JailHostConfiguration = JailHostConfiguration()) throws(RunFailure) -> JailSupervisor {
        do {
            return try JailSupervisor(host: host, cgroups: cgroups ? try CgroupManager(host: try CgroupHost.detect()) : nil)
        } catch {
            throw RunFailure(message: "\(error)")
        }
    }
}

/// Why a command could not start its workload, as it prints it after "edgy: ".
struct RunFailure: Error {
    let message: String
}

/// Host files named on the command line (`--file DEST=SRC`, `--stdin FILE`), read into memory
/// (relative paths from the working directory); a bad one is named in the failure.
enum HostFiles {
    static func read(_ specs: [String]) throws(RunFailure) -> [TaskFile] {
        var files: [TaskFile] = []
        for spec in specs {
            let parts = spec.split(separator: "=", maxSplits: 1)
            let dest = String(parts[0]), source = parts.count > 1 ? String(parts[1]) : ""
            guard let data = FileManager.default.contents(atPath: source) else {
                throw RunFailure(message: "--file \(spec): cannot read \(source)")
            }
            let mode = ((try? FileManager.default.attributesOfItem(atPath: source)[.posixPermissions]) as? Int).map(UInt32.init) ?? 0o644
            files.append(TaskFile(path: dest, contents: Array(data), mode: mode))
        }
        return files
    }

    static func readStdin(_ path: String) throws(RunFailure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw RunFailure(message: "--stdin: cannot read \(path)") }
        return Array(data)
    }
}
