import Foundation

/// How a task's dependencies were provided: the layer's key and whether this attempt installed
/// it, found it cached, or could not install it (then `log` holds the end of the install's output).
public struct DependencyReport: Sendable, Hashable, Codable {
    public enum Source: String, Sendable, Hashable, Codable {
        /// This attempt ran the install step.
        case installed
        /// The layer was on this host already (or another task's install of it was waited for).
        case cached
        /// Another host installed it: this one fetched its archive from the shared store.
        case fetched
        /// The install step failed; the attempt's outcome is `dependency_error`.
        case failed
    }

    /// sha256 of the manifest, the lockfile, the policy's digest and the runtime's version.
    public var key: String
    public var source: Source
    /// How long the install step took (installed and failed only).
    public var installMs: Int?
    /// The layer's size on disk.
    public var layerBytes: UInt64?
    /// The install step's stdout and stderr, the last `maxLogBytes` (failed installs; installed
    /// ones too, for the record).
    public var log: String?
    /// Why the install failed, in one line (failed only).
    public var error: String?
    /// Failed only: whether the task is retried (the registry was unreachable, or Edgy failed).
    /// A package that does not exist is not.
    public var retryable: Bool?

    public static let maxLogBytes = 16 << 10

    /// Whether `text` has a layer key's shape (64 lower-case hex digits): what the API and the
    /// layer directory accept as a name.
    public static func isKey(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    public init(
        key: String, source: Source, installMs: Int? = nil, layerBytes: UInt64? = nil, log: String? = nil, error: String? = nil,
        retryable: Bool? = nil
    ) {
        self.retryable = retryable
        self.key = key
        self.source = source
        self.installMs = installMs
        self.layerBytes = layerBytes
        self.log = log
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case key, source, log, error, retryable
        case installMs = "install_ms"
        case layerBytes = "layer_bytes"
    }
}

/// One dependency layer on a host, as `GET /v1/layers` lists it.
public struct LayerSummary: Sendable, Hashable, Codable {
    public var key: String
    public var bytes: UInt64
    public var lastUsed: Date
    /// Attempts using it now (it is not evicted or removed while any does).
    public var users: Int

    public init(key: String, bytes: UInt64, lastUsed: Date, users: Int) {
        self.key = key
        self.bytes = bytes
        self.lastUsed = lastUsed
        self.users = users
    }

    enum CodingKeys: String, CodingKey {
        case key, bytes, users
        case lastUsed = "last_used"
    }
}

/// What removing a layer did.
public enum LayerRemoval: Sendable {
    case removed, notFound
    /// An attempt uses it now; it stays.
    case inUse
}
