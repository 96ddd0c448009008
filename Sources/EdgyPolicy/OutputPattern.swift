/// A pattern of output paths, relative to the working directory: segments separated by `/`,
/// where `*` matches any run of characters within a segment, `?` one character, and a segment
/// that is exactly `**` any number of segments (none included). `out/**` is everything under
/// `out`; `*.png` the PNG files at the top; `**/*.png` those at any depth. Nothing else is
/// special, so a pattern never needs escaping and matching never backtracks without bound. A
/// trailing `**` matches one segment at least: `out/**` is what is inside `out`, not `out` itself.
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
        Self.match(segments, path.map { Array($0.utf8) }, wholePath: true)
    }

    public func matches(_ path: String) -> Bool { matches(path.split(separator: "/")) }

    /// Whether a file somewhere below directory `directory` (its segments) could match: the walk
    /// skips directories no pattern reaches into.
    public func reachesBelow(_ directory: [Substring]) -> Bool {
        Self.match(segments, directory.map { Array($0.utf8) }, wholePath: false)
    }

    /// Dynamic programming over (pattern segment, path segment), so a pattern with many `**` costs
    /// segments × depth, never a search of every split. `wholePath`: the pattern must end with the
    /// path; otherwise the path is a directory and the pattern must have a segment left for what
    /// is below it (or a `**`, which matches below anything).
    private static func match(_ pattern: [Segment], _ path: [[UInt8]], wholePath: Bool) -> Bool {
        // reachable[j]: the first i pattern segments can consume the first j path segments.
        var reachable = [Bool](repeating: false, count: path.count + 1)
        reachable[0] = true
        for (index, segment) in pattern.enumerated() {
            var next = [Bool](repeating: false, count: path.count + 1)
            switch segment {
            case .anyDepth:
                // A trailing `**` is what is inside: one segment at least (`out/**` is not `out`).
                let atLeastOne = index == pattern.count - 1
                var seen = false
                for j in 0...path.count {
                    if atLeastOne { next[j] = seen }
                    seen = seen || reachable[j]
                    if !atLeastOne { next[j] = seen }
                }
            case .glob(let glob):
                for j in 0..<path.count where reachable[j] && globMatches(glob[...], path[j][...]) { next[j + 1] = true }
            }
            if !wholePath && reachable[path.count] {
                // The directory is consumed and this segment remains for what is below it.
                return true
            }
            reachable = next
        }
        if wholePath { return reachable[path.count] }
        // All segments consumed exactly at the directory: only a trailing `**` reaches below.
        return reachable[path.count] && pattern.last == .anyDepth
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
