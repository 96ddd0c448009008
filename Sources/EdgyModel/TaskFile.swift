import Foundation

/// One file of a task: kept in the store, handed to the jail in memory, and written by the jail's
/// child straight into its private tmpfs, so it never touches the host's disk. `path` is relative
/// to the working directory: no `..`, no leading `/`.
public struct TaskFile: Sendable, Hashable, Codable {
    public var path: String
    public var contents: [UInt8]
    public var mode: UInt32
    /// Set when the file is a stored blob (lower-case sha256 hex) rather than bytes sent with the
    /// task: `contents` is then empty until the worker reads the blob for the attempt.
    public var blob: String?
    /// Set when a read for the API left the bytes out (`contents` is then empty): how many there
    /// are. The API shows sizes, never bytes, and loading them would let a request that lists
    /// tasks hold every byte of them.
    public var omittedSize: Int?

    /// Bytes of the file, read or left out.
    public var size: Int { omittedSize ?? contents.count }

    public init(path: String, contents: [UInt8], mode: UInt32 = 0o644) {
        self.path = path
        self.contents = contents
        self.mode = mode
    }

    /// A file whose bytes are the blob `sha256`.
    public init(path: String, blob sha256: String, mode: UInt32 = 0o644) {
        self.path = path
        self.contents = []
        self.mode = mode
        self.blob = sha256
    }

    enum CodingKeys: String, CodingKey { case path, contents, mode, blob, omittedSize = "omitted_size" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        contents = Array(try c.decode(Data.self, forKey: .contents))
        mode = try c.decode(UInt32.self, forKey: .mode)
        blob = try c.decodeIfPresent(String.self, forKey: .blob)
        omittedSize = try c.decodeIfPresent(Int.self, forKey: .omittedSize)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(Data(contents), forKey: .contents)
        try c.encode(mode, forKey: .mode)
        try c.encodeIfPresent(blob, forKey: .blob)
        try c.encodeIfPresent(omittedSize, forKey: .omittedSize)
    }
}

/// A working directory as one step left it for the next: its regular files.
public struct Workspace: Sendable, Hashable {
    public var files: [TaskFile]
    /// Paths left behind: symlinks and special files.
    public var omitted: [OutputsReport.Omitted]
    /// False when the walk ran out of time or failed: the next step would miss files.
    public var complete: Bool

    public init(files: [TaskFile], omitted: [OutputsReport.Omitted] = [], complete: Bool = true) {
        self.files = files
        self.omitted = omitted
        self.complete = complete
    }
}
