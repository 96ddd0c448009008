/// What an attempt collected from its working directory (`[outputs]`), and what it left out.
public struct OutputsReport: Sendable, Hashable, Codable {
    public struct File: Sendable, Hashable, Codable {
        /// Relative to the working directory.
        public var path: String
        public var size: Int
        /// Lower-case hex: the blob that holds the bytes.
        public var sha256: String
        /// Permission bits (`0o644`).
        public var mode: UInt32

        public init(path: String, size: Int, sha256: String, mode: UInt32) {
            self.path = path
            self.size = size
            self.sha256 = sha256
            self.mode = mode
        }
    }

    /// A path that matched but was not collected.
    public struct Omitted: Sendable, Hashable, Codable {
        public enum Reason: String, Sendable, Hashable, Codable {
            /// A symbolic link: never followed.
            case symlink
            /// A FIFO, socket or device: never opened.
            case special
            /// Over `max_files`.
            case maxFiles = "max_files"
            /// Over `max_mib`.
            case maxBytes = "max_bytes"
            /// The collection ran out of `time_ms`.
            case time
            /// Could not be read, or its name is not UTF-8 (so it could not be listed exactly).
            case unreadable
        }

        public var path: String
        public var reason: Reason

        public init(path: String, reason: Reason) {
            self.path = path
            self.reason = reason
        }
    }

    public var files: [File]
    /// At most `maxOmittedListed` of them; `omittedCount` counts all.
    public var omitted: [Omitted]
    public var omittedCount: Int
    /// Some matching file was left out for a cap (count, bytes, time): `outputs_truncated`.
    public var truncated: Bool
    public var collectMs: Double
    /// Set when the files could not be stored (they are then not listed).
    public var error: String?

    public static let maxOmittedListed = 100

    public init(files: [File] = [], omitted: [Omitted] = [], omittedCount: Int = 0, truncated: Bool = false, collectMs: Double = 0, error: String? = nil) {
        self.files = files
        self.omitted = omitted
        self.omittedCount = omittedCount
        self.truncated = truncated
        self.collectMs = collectMs
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case files, omitted, error
        case omittedCount = "omitted_count"
        case truncated = "outputs_truncated"
        case collectMs = "collect_ms"
    }

    public mutating func omit(_ path: String, _ reason: Omitted.Reason) {
        omittedCount += 1
        if omitted.count < Self.maxOmittedListed { omitted.append(Omitted(path: path, reason: reason)) }
        if reason == .maxFiles || reason == .maxBytes || reason == .time { truncated = true }
    }
}
