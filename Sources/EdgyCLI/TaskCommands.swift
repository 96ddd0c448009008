import ArgumentParser
import EdgyModel
import EdgyUpload
import Foundation
import Glibc

/// `edgy submit`: a task to a server, from files, a directory, stdin and a policy.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a task to a server; print its id, or with --wait its output.",
        discussion: """
            A directory is sent as one .tar.gz archive, unpacked by the server into the working \
            directory. With --wait, the exit status is the task's (as `edgy run`): its exit code, \
            128+N for signal N, 124 for a timeout, 130 when cancelled, 1 for a failed task whose \
            last jail exited 0 (a case not accepted), 125 when Edgy could not run it.
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: "The policy (default: the server's).")
    var policy: String?

    @Option(help: "The task's name.")
    var name: String?

    @Option(name: .customLong("file"), help: ArgumentHelp("A file: DEST=SRC (repeatable).", valueName: "DEST=SRC"))
    var files: [String] = []

    @Option(name: .customLong("dir"), help: "A directory whose files are the task's (sent as an archive).")
    var directory: String?

    @Option(help: "A file whose text is the policy's entry file (input).")
    var input: String?

    @Option(help: "A file to give the task as stdin, or - for this command's stdin.")
    var stdin: String?

    @Option(help: "A JSON file of the task's steps (a multi-step task: docs/steps.md).")
    var steps: String?

    @Option(name: .customLong("callback-url"), help: "POST the finished task here, signed (docs/webhooks.md).")
    var callbackURL: String?

    @Flag(help: "Wait for the task: stream its output, exit with its status.")
    var wait = false

    @Argument(parsing: .postTerminator, help: "The task's own command, after --.")
    var command: [String] = []

    func run() async throws {
        try await reportingServerErrors {
            let client = try server.client()
            var form = MultipartForm()
            if let name { form.field("name", name) }
            if let policy { form.field("policy", policy) }
            if let input { form.field("input", String(decoding: try Self.read(input), as: UTF8.self)) }
            if !command.isEmpty {
                form.field("command", String(decoding: try JSONSerialization.data(withJSONObject: command), as: UTF8.self))
            }
            if let stdin { form.field("stdin", try Self.read(stdin)) }
            if let steps { form.field("steps", try Self.read(steps)) }
            if let callbackURL { form.field("callback_url", callbackURL) }
            for file in files {
                guard let eq = file.firstIndex(of: "="), eq != file.startIndex else {
                    throw ValidationError("--file takes DEST=SRC, got \(file)")
                }
                form.file(String(file[..<eq]), try Self.read(String(file[file.index(after: eq)...])))
            }
            if let directory { form.file("files.tar.gz", try Self.archive(directory)) }
            let created = try await client.request("POST", "/v1/tasks", body: form.body, contentType: form.contentType)
            let task = (try? JSONSerialization.jsonObject(with: created)) as? [String: Any] ?? [:]
            guard let id = task["id"] as? String else { throw ServerError(description: "the server answered no task id") }
            guard wait else {
                print(server.json ? String(decoding: created, as: UTF8.self) : id)
                return
            }
            throw ExitCode(try await TaskFollower(client: client, id: id, json: server.json).follow(streamingOutput: true))
        }
    }

    static func read(_ path: String) throws -> [UInt8] {
        if path == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        return Array(data)
    }

    /// The directory's regular files (following no symlink), as a .tar.gz with their modes.
    static func archive(_ directory: String) throws -> [UInt8] {
        var tar = TarWriter()
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw ValidationError("cannot read directory \(directory)") }
        for case let relative as String in walker {
            let path = root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            tar.add(path: relative, contents: Array(data), mode: UInt32(info.st_mode & 0o777))
        }
        return Gzip.compress(tar.archive())
    }
}

/// `edgy get ID`.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a task.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The task's id.") var id: String

    func run() async throws {
        try await reportingServerErrors {
            TaskFollower.show(try await server.client().request("GET", "/v1/tasks/\(TaskFollower.segment(id))"), json: server.json)
        }
    }
}

/// `edgy wait ID`.
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait for a task to finish; exit with its status (as `edgy submit --wait`).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The task's id.") var id: String

    func run() async throws {
        try await reportingServerErrors {
            throw ExitCode(try await TaskFollower(client: server.client(), id: TaskFollower.segment(id), json: server.json).follow(streamingOutput: false))
        }
    }
}

/// `edgy logs ID [-f]`.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print a task's stdout and stderr; with -f, follow them until it ends.")
    @OptionGroup var server: ServerOptions
    @Flag(name: .shortAndLong, help: "Follow the output as it comes.") var follow = false
    @Argument(help: "The task's id.") var id: String

    func run() async throws {
        try await reportingServerErrors {
            let client = try server.client()
            let id = TaskFollower.segment(id)
            if follow {
                _ = try await TaskFollower(client: client, id: id, json: false).follow(streamingOutput: true)
                return
            }
            FileHandle.standardOutput.write(try await client.request("GET", "/v1/tasks/\(id)/stdout"))
            FileHandle.standardError.write(try await client.request("GET", "/v1/tasks/\(id)/stderr"))
        }
    }
}

/// `edgy cancel ID`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a task (a running jail is killed).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The task's id.") var id: String

    func run() async throws {
        try await reportingServerErrors {
            TaskFollower.show(try await server.client().request("POST", "/v1/tasks/\(TaskFollower.segment(id))/cancel"), json: server.json)
        }
    }
}

/// `edgy delete ID`.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a task (cancelling it first).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The task's id.") var id: String

    func run() async throws {
        try await reportingServerErrors {
            _ = try await server.client().request("DELETE", "/v1/tasks/\(TaskFollower.segment(id))")
        }
    }
}

/// `edgy ls`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the tenant's tasks, newest first.")
    @OptionGroup var server: ServerOptions
    @Option(help: "Only tasks in this status (queued, running, succeeded, failed, cancelled).") var status: String?
    @Option(help: "At most this many (1 to 500).") var limit = 50

    func run() async throws {
        try await reportingServerErrors {
            var query = "limit=\(limit)"
            if let status { query += "&status=\(TaskFollower.segment(status))" }
            let data = try await server.client().request("GET", "/v1/tasks?\(query)")
            guard !server.json else { return print(String(decoding: data, as: UTF8.self)) }
            let tasks = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["tasks"] as? [[String: Any]] ?? []
            for task in tasks { print(TaskFollower.summary(task)) }
        }
    }
}

/// A server's refusal or an unreachable server: one line on stderr, exit 125.
func reportingServerErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ServerError {
        FileHandle.standardError.write(Data("edgy: \(error)\n".utf8))
        throw ExitCode(EdgyExitCode.edgyFailed)
    }
}

/// Follows one task to its end over SSE and works out the exit status.
struct TaskFollower {
    var client: ServerClient
    var id: String
    var json: Bool

    /// With `streamingOutput`, stdout and stderr events go to this process's; on a terminal, a
    /// progress line on stderr (status, steps, cases), none when piped. Returns the exit status.
    func follow(streamingOutput: Bool) async throws -> Int32 {
        let terminal = isatty(STDERR_FILENO) == 1 && !json
        var progress = Progress()
        try await client.events(id) { event in
            switch event.kind {
            case "stdout" where streamingOutput && !json:
                if terminal { progress.clear() }
                FileHandle.standardOutput.write(Data(event.data.utf8))
            case "stderr" where streamingOutput && !json:
                if terminal { progress.clear() }
                FileHandle.standardError.write(Data(event.data.utf8))
            default:
                progress.note(event)
            }
            if terminal { progress.draw() }
        }
        if terminal { progress.clear() }
        let data = try await client.request("GET", "/v1/tasks/\(id)")
        let task = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        if json {
            print(String(decoding: data, as: UTF8.self))
        } else if terminal {
            FileHandle.standardError.write(Data((Self.summary(task) + "\n").utf8))
        }
        return Self.exitStatus(task)
    }

    /// As `edgy run`'s, from the task's last report.
    static func exitStatus(_ task: [String: Any]) -> Int32 {
        switch task["status"] as? String {
        case "succeeded": return 0
        case "cancelled": return 130
        case "failed":
            guard let result = task["result"], let data = try? JSONSerialization.data(withJSONObject: result),
                  let report = try? JSONDecoder().decode(AttemptReport.self, from: data) else { return 1 }
            let status = RunCommand.exitStatus(report)
            return status == 0 ? 1 : status
        default: return EdgyExitCode.edgyFailed
        }
    }

    /// A task's JSON as the server sent it, or its summary line.
    static func show(_ data: Data, json: Bool) {
        let task = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        print(json ? String(decoding: data, as: UTF8.self) : summary(task))
    }

    /// `ID  status  policy  outcome  exit N  name`.
    static func summary(_ task: [String: Any]) -> String {
        var parts = [task["id"] as? String ?? "?", task["status"] as? String ?? "?", task["policy"] as? String ?? ""]
        if let outcome = task["outcome"] as? String { parts.append(outcome) }
        if let code = task["exit_code"] as? Int { parts.append("exit \(code)") }
        if let cases = (task["result"] as? [String: Any])?["cases"] as? [String: Any], let total = cases["total"] as? Int {
            parts.append("cases \(cases["passed"] as? Int ?? 0)/\(total)")
        }
        parts.append(task["name"] as? String ?? "")
        return parts.joined(separator: "  ")
    }

    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// One line on the terminal, redrawn in place.
    struct Progress {
        var status = "queued"
        var step: String?
        var casesDone = 0
        var casesFailed = 0
        var shown = false

        mutating func note(_ event: ServerClient.Event) {
            switch event.kind {
            case "status": status = event.data
            case "step":
                let object = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any]
                step = object?["name"] as? String
            case "case":
                casesDone += 1
                if !event.data.contains(#""verdict":"accepted""#) { casesFailed += 1 }
            default: break
            }
        }

        mutating func draw() {
            var line = "edgy: \(status)"
            if let step { line += ", step \(step)" }
            if casesDone > 0 { line += ", \(casesDone) cases (\(casesFailed) failed)" }
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
            shown = true
        }

        mutating func clear() {
            guard shown else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
            shown = false
        }
    }
}

/// A multipart/form-data body: fields and files.
struct MultipartForm {
    let boundary = "edgy-" + UUID().uuidString
    private var parts: [(headers: String, contents: [UInt8])] = []

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    var body: [UInt8] {
        parts.reduce(into: [UInt8]()) { body, part in
            body += Array("--\(boundary)\r\n\(part.headers)\r\n\r\n".utf8) + part.contents + Array("\r\n".utf8)
        } + Array("--\(boundary)--\r\n".utf8)
    }

    mutating func field(_ name: String, _ value: String) { field(name, Array(value.utf8)) }

    mutating func field(_ name: String, _ value: [UInt8]) {
        parts.append(("Content-Disposition: form-data; name=\"\(name)\"", value))
    }

    mutating func file(_ filename: String, _ contents: [UInt8]) {
        let escaped = filename.replacingOccurrences(of: "\"", with: "%22")
        parts.append(("Content-Disposition: form-data; name=\"file\"; filename=\"\(escaped)\"\r\nContent-Type: application/octet-stream", contents))
    }
}
