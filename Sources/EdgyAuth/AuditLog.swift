import EdgyJSON
import Foundation
import Glibc
import Synchronization

/// One line of the audit log: who did what to which task, token or policy, from where, and how
/// it ended. Never a token: principals are named by id and name only.
public struct AuditEntry: Sendable, Hashable, Codable {
    /// What was attempted: `auth`, `task.create`, `task.cancel`, `task.delete`, `token.create`,
    /// `token.list`, `token.revoke`, `policy.reload`, `audit.read`.
    public var action: String
    /// `ok`, `denied` (401/403/404/429), or `error` (any other failure).
    public var result: String
    /// The HTTP status answered (0 for offline CLI actions).
    public var status: Int
    public var time: Date
    public var principalID: UUID?
    public var principalName: String?
    public var tenant: String?
    /// The caller's IP address (`cli` for offline `edgy token` commands).
    public var client: String?
    public var method: String?
    public var path: String?
    public var taskID: UUID?
    public var policy: String?
    /// The token an action was about (`token.create`, `token.revoke`): its id, never its secret.
    public var tokenID: UUID?
    /// Why it was refused, or what it did.
    public var detail: String?

    public init(
        action: String, result: String, status: Int, time: Date = Date(), principal: Principal? = nil, client: String? = nil,
        method: String? = nil, path: String? = nil, taskID: UUID? = nil, policy: String? = nil, tokenID: UUID? = nil, detail: String? = nil
    ) {
        self.action = action
        self.result = result
        self.status = status
        self.time = time
        self.principalID = principal?.id
        self.principalName = principal?.name
        self.tenant = principal?.tenant
        self.client = client
        self.method = method
        self.path = path
        self.taskID = taskID
        self.policy = policy
        self.tokenID = tokenID
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case action, result, status, time, tenant, client, method, path, policy, detail
        case principalID = "principal_id", principalName = "principal_name", taskID = "task_id", tokenID = "token_id"
    }

    /// Ids in lower case, as the API writes them everywhere else.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(action, forKey: .action)
        try c.encode(result, forKey: .result)
        try c.encode(status, forKey: .status)
        // The text itself, not a Date: every encoder writes the same time, as `AuditLog.decoder` reads it.
        try c.encode(time.formatted(AuditLog.dateStyle), forKey: .time)
        try c.encodeIfPresent(principalID?.uuidString.lowercased(), forKey: .principalID)
        try c.encodeIfPresent(principalName, forKey: .principalName)
        try c.encodeIfPresent(tenant, forKey: .tenant)
        try c.encodeIfPresent(client, forKey: .client)
        try c.encodeIfPresent(method, forKey: .method)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encodeIfPresent(taskID?.uuidString.lowercased(), forKey: .taskID)
        try c.encodeIfPresent(policy, forKey: .policy)
        try c.encodeIfPresent(tokenID?.uuidString.lowercased(), forKey: .tokenID)
        try c.encodeIfPresent(detail, forKey: .detail)
    }

    /// `denied` for refusals the caller caused (401, 403, 404, 429), `error` for other failures.
    public static func result(forStatus status: Int) -> String {
        switch status {
        case 200..<400: "ok"
        case 401, 403, 404, 429: "denied"
        default: "error"
        }
    }
}

/// Filters of `GET /v1/audit`.
public struct AuditQuery: Sendable, Hashable {
    public var action: String?
    public var tenant: String?
    public var since: Date?
    /// The newest `limit` matching entries are returned, oldest first.
    public var limit: Int

    public init(action: String? = nil, tenant: String? = nil, since: Date? = nil, limit: Int = 100) {
        self.action = action
        self.tenant = tenant
        self.since = since
        self.limit = limit
    }

    func matches(_ entry: AuditEntry) -> Bool {
        (action.map { entry.action == $0 } ?? true) && (tenant.map { entry.tenant == $0 } ?? true)
            && (since.map { entry.time >= $0 } ?? true)
    }
}

/// The audit log: JSON lines appended to a file in the state directory, or kept in memory
/// (tests, a daemon without a state directory).
///
/// The file is opened `O_APPEND` with mode 0600 and each entry is one `write(2)` of one line, so
/// concurrent writers (the daemon and an offline `edgy token` command) never interleave within a
/// line and nothing already written is ever rewritten.
public final class AuditLog: Sendable {
    /// The file, or nil when entries stay in `memory`.
    private let fd: Int32?
    private let path: String?
    private let memory = Mutex<[AuditEntry]>([])

    /// Entries kept in memory only.
    public init() {
        fd = nil
        path = nil
    }

    /// Appends to `path`, creating it with mode 0600.
    /// - Throws: `AuditLogError` when the file cannot be opened.
    public init(path: String) throws(AuditLogError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuditLogError(path: path, errno: errno) }
        self.fd = fd
        self.path = path
    }

    deinit {
        if let fd { close(fd) }
    }

    public static let dateStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try dateStyle.parse(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }()

    /// Appends one entry as one line in one `write(2)`: with `O_APPEND` the kernel places each write
    /// at the end atomically, so no lock is needed between threads or processes.
    /// - Returns: the error when the line could not be written (the action itself is not undone;
    ///   the caller logs it).
    @discardableResult
    public func record(_ entry: AuditEntry) -> AuditLogError? {
        guard let fd, let path else {
            memory.withLock { $0.append(entry) }
            return nil
        }
        // Encoding these fields cannot fail; an empty line would be the only symptom. Sorted keys,
        // in one pass: every audited request writes a line before it is answered.
        var line = (try? SortedJSON.encode(entry)) ?? []
        line.append(UInt8(ascii: "\n"))
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        return written == line.count ? nil : AuditLogError(path: path, errno: written < 0 ? errno : EIO)
    }

    /// The newest `query.limit` entries that match, oldest first. Reads the whole file: the log is
    /// for operators, and rotation (logrotate with `copytruncate`) keeps it small.
    public func entries(_ query: AuditQuery) -> [AuditEntry] {
        let all: [AuditEntry]
        if let path {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            all = text.split(separator: "\n").compactMap { try? Self.decoder.decode(AuditEntry.self, from: Data($0.utf8)) }
        } else {
            all = memory.withLock { $0 }
        }
        return Array(all.filter(query.matches).suffix(max(0, query.limit)))
    }
}

public struct AuditLogError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String { "audit log \(path): \(String(cString: strerror(errno)))" }
}
