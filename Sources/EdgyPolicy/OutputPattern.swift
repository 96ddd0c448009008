/// A pattern of output paths, relative to the working directory: segments separated by `/`,
/// where `*` matches any run of characters within a segment, `?` one character, and a segment
/// that is exactly `**` any number of segments (none included). `out/**` is everything under
/// `out`; `*.png` the PNG files at the top; `**/*.png` those at any depth. Nothing else is
/// special, so a pattern never needs escaping and matching never backtracks without bound.
public struct OutputPattern: Sendable, Hashable, CustomStringConvertible {
    /// The longest pattern accepted: a path the kernel allows, with room.
    public static let maxLength = 512

    enum Segment: Sendable, Hashable {
        case anyDepth
        case glob([UInt8])
    }

    let segments: [Segment]
    public let description: String

    /// Parses `text`, or says what is wrong with it (for a policy file's line or a request's field).
    public init(_ text: String) throws(OutputPatternError) {
        guard !text.isEmpty else { throw OutputPatternError("an output pattern cannot be empty") }
        guard text.utf8.count <= Self.maxLength else {
            throw OutputPatternError("an output pattern is at most \(Self.maxLength) bytes")
        }
        guard !text.hasPrefix("/") else {
            throw OutputPatternError("\"\(text)\" must be relative to the working directory (no leading /)")
        }
        var segments: [Segment] = []
        for part in text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let bytes = Array(part)
            if bytes.isEmpty || bytes == [UInt8(ascii: ".")] || bytes == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                throw OutputPatternError("\"\(text)\" has an empty, \".\" or \"..\" segment")
            }
            if bytes.contains(0) { throw OutputPatternError("an output pattern cannot contain NUL") }
            if bytes == Array("**".utf8) {
                // `**/**` matches what `**` does: one is enough, and keeps matching linear.
                if segments.last != .anyDepth { segments.append(.anyDepth) }
            } else if bytes.contains(UInt8(ascii: "*")) && bytes.count > 1
                        && bytes.indices.dropLast().contains(where: { bytes[$0] == UInt8(ascii: "*") && bytes[$0 + 1] == UInt8(ascii: "*") }) {
                throw OutputPatternError("\"\(text)\": ** must be a whole segment (out/**, **/*.png)")
            } else {
                segments.append(.glob(bytes))
            }
        }
        self.segments = segments
        self.description = text
    }

    /// Whether the relative path (its segments) matches.
    public func matches(_ path: [Substring]) -> Bool {
        Self.match(segments[...], path.map { Array($0.utf8) }[...], wholePath: true)
    }

    public func matches(_ path: String) -> Bool { matches(path.split(separator: "/")) }

    /// Whether a file somewhere below directory `directory` (its segments) could match: the walk
    /// skips directories no pattern reaches into.
    public func reachesBelow(_ directory: [Substring]) -> Bool {
        Self.match(segments[...], directory.map { Array($0.utf8) }[...], wholePath: false)
    }

    /// `wholePath`: the pattern must end with the path; otherwise the path is a directory and the
    /// pattern must have at least one segment left for what is below it.
    private static func match(_ pattern: ArraySlice<Segment>, _ path: ArraySlice<[UInt8]>, wholePath: Bool) -> Bool {
        guard let first = pattern.first else { return wholePath && path.isEmpty }
        switch first {
        case .anyDepth:
            if !wholePath { return true }
            // `**` takes 0…n segments; the rest of the pattern has no `**` directly after it.
            var rest = path
            while true {
                if match(pattern.dropFirst(), rest, wholePath: true) { return true }
                if rest.isEmpty { return false }
                rest = rest.dropFirst()
            }
        case .glob(let glob):
            guard let segment = path.first else { return !wholePath }
            return globMatches(glob[...], segment[...]) && match(pattern.dropFirst(), path.dropFirst(), wholePath: wholePath)
        }
    }

    /// `*` and `?` within one segment, iteratively with one backtrack point: linear in practice.
    static func globMatches(_ glob: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        var g = glob.startIndex, n = name.startIndex
        var star: Int?, resume = name.startIndex
        while n < name.endIndex {
            if g < glob.endIndex && (glob[g] == UInt8(ascii: "?") || glob[g] == name[n]) && glob[g] != UInt8(ascii: "*") {
                g += 1; n += 1
            } else if g < glob.endIndex && glob[g] == UInt8(ascii: "*") {
                star = g; g += 1; resume = n
            } else if let s = star {
                g = s + 1; resume += 1; n = resume
            } else {
                return false
            }
        }
        while g < glob.endIndex && glob[g] == UInt8(ascii: "*") { g += 1 }
        return g == glob.endIndex
    }
}

/// Why an output pattern was refused.
public struct OutputPatternError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A set of patterns: a path is collected when it matches one of them (and, when the task named
/// its own, one of the task's too).
public struct OutputSelection: Sendable, Hashable {
    public var policy: [OutputPattern]
    /// The task's subset; nil: everything the policy names.
    public var task: [OutputPattern]?

    public init(policy: [OutputPattern], task: [OutputPattern]? = nil) {
        self.policy = policy
        self.task = task
    }

    public func selects(_ path: [Substring]) -> Bool {
        policy.contains { $0.matches(path) } && (task.map { $0.contains { $0.matches(path) } } ?? true)
    }

    public func reachesBelow(_ directory: [Substring]) -> Bool {
        policy.contains { $0.reachesBelow(directory) } && (task.map { $0.contains { $0.reachesBelow(directory) } } ?? true)
    }

    /// Whether nothing can be selected (no pattern, or the task asked for none).
    public var isEmpty: Bool { policy.isEmpty || task?.isEmpty == true }
}
