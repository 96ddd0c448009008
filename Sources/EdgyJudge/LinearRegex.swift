/// A regular expression matched in time linear in the text (a Pike VM over Unicode scalars), so a
/// client's pattern cannot make a grader backtrack for ever. The syntax is the common core:
/// literals; `.` (any scalar but `\n`); classes `[a-z_]`, `[^…]`; escapes `\d \D \w \W \s \S \n
/// \t \r` and `\` before any punctuation; groups `( … )` and `(?: … )`; `|`; `*`, `+`, `?` and
/// `{m}`, `{m,}`, `{m,n}` (counts up to `maxRepeat`); `^` and `$` at the ends of the text.
/// Back-references and look-around are refused: they are what makes matching exponential.
public struct LinearRegex: Sendable {
    public static let maxPatternScalars = 4096
    public static let maxRepeat = 1000
    /// Instructions after counted repeats are unrolled.
    public static let maxProgram = 20_000

    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case set(CharacterSet, negated: Bool)
        case any
        case split(Int, Int)
        case jump(Int)
        case textStart, textEnd
        case match
    }

    struct CharacterSet: Sendable {
        var ranges: [ClosedRange<UInt32>] = []
        func contains(_ scalar: Unicode.Scalar) -> Bool { ranges.contains { $0.contains(scalar.value) } }
    }

    let program: [Instruction]

    /// Compiles `pattern`, or throws a `RegexError` naming the offset of the problem.
    public init(_ pattern: String) throws(RegexError) {
        let scalars = Array(pattern.unicodeScalars)
        guard scalars.count <= Self.maxPatternScalars else {
            throw RegexError("the pattern is longer than \(Self.maxPatternScalars) characters", offset: Self.maxPatternScalars)
        }
        var parser = Parser(scalars: scalars)
        let node = try parser.parseAlternation()
        if parser.position < scalars.count {
            throw RegexError("unbalanced ')'", offset: parser.position)
        }
        var compiler = Compiler()
        try compiler.emit(node)
        compiler.program.append(.match)
        program = compiler.program
    }

    /// Whether the pattern matches all of `text`. Stops with nil after `budget` thread steps, so a
    /// huge text against a large pattern ends in bounded time too.
    public func matchesWhole(_ text: String, budget: Int = 200_000_000) -> Bool? {
        let scalars = Array(text.unicodeScalars)
        var current = ThreadList(capacity: program.count)
        var next = ThreadList(capacity: program.count)
        var steps = 0
        addThread(&current, 0, at: 0, count: scalars.count, steps: &steps)
        for (i, scalar) in scalars.enumerated() {
            if current.isEmpty { return false }
            steps += current.count
            if steps > budget { return nil }
            next.clear()
            for pc in current.items {
                let advances: Bool
                switch program[pc] {
                case .scalar(let s): advances = s == scalar
                case .set(let set, let negated): advances = set.contains(scalar) != negated
                case .any: advances = scalar != "\n"
                default: advances = false
                }
                if advances { addThread(&next, pc + 1, at: i + 1, count: scalars.count, steps: &steps) }
            }
            swap(&current, &next)
        }
        return current.items.contains { if case .match = program[$0] { true } else { false } }
    }

    /// Adds `pc` and everything reachable from it without consuming a scalar.
    private func addThread(_ list: inout ThreadList, _ pc: Int, at position: Int, count: Int, steps: inout Int) {
        var stack = [pc]
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            steps += 1
            switch program[pc] {
            case .split(let a, let b):
                stack.append(b)
                stack.append(a)
            case .jump(let target):
                stack.append(target)
            case .textStart:
                if position == 0 { stack.append(pc + 1) }
            case .textEnd:
                if position == count { stack.append(pc + 1) }
            default:
                break
            }
        }
    }

    /// A set of program counters in insertion order, cleared in O(1).
    struct ThreadList {
        var items: [Int] = []
        var mark: [UInt32]
        var generation: UInt32 = 1

        init(capacity: Int) { mark = Array(repeating: 0, count: capacity) }

        var isEmpty: Bool { items.isEmpty }
        var count: Int { items.count }

        mutating func insert(_ pc: Int) -> Bool {
            if mark[pc] == generation { return false }
            mark[pc] = generation
            items.append(pc)
            return true
        }

        mutating func clear() {
            items.removeAll(keepingCapacity: true)
            generation &+= 1
            if generation == 0 {
                mark = Array(repeating: 0, count: mark.count)
                generation = 1
            }
        }
    }
}

/// A pattern `LinearRegex` refuses, and where.
public struct RegexError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// In Unicode scalars from the pattern's start.
    public var offset: Int

    init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) (at character \(offset))" }
}

extension LinearRegex {
    indirect enum Node {
        case empty
        case atom(Instruction)
        case sequence([Node])
        case alternation([Node])
        case repeated(Node, min: Int, max: Int?)
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        var position = 0
        var depth = 0

        init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

        var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

        mutating func parseAlternation() throws(RegexError) -> Node {
            var branches = [try parseSequence()]
            while peek == "|" {
                position += 1
                branches.append(try parseSequence())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseSequence() throws(RegexError) -> Node {
            var items: [Node] = []
            while let c = peek, c != "|", c != ")" {
                var atom = try parseAtom()
                while let q = peek, q == "*" || q == "+" || q == "?" || q == "{" {
                    let at = position
                    guard let (min, max) = try parseQuantifier() else { break }
                    if case .atom(.textStart) = atom { throw RegexError("nothing to repeat", offset: at) }
                    if case .atom(.textEnd) = atom { throw RegexError("nothing to repeat", offset: at) }
                    atom = .repeated(atom, min: min, max: max)
                }
                items.append(atom)
            }
            return items.count == 1 ? items[0] : .sequence(items)
        }

        /// nil when `{` does not start a well-formed count (it is then a literal brace).
        mutating func parseQuantifier() throws(RegexError) -> (Int, Int?)? {
            let c = scalars[position]
            switch c {
            case "*": position += 1; return (0, nil)
            case "+": position += 1; return (1, nil)
            case "?": position += 1; return (0, 1)
            default: break
            }
            let start = position
            position += 1
            func number() -> Int? {
                var value: Int?
                while let d = peek, let digit = Int(String(d)), d.isASCII {
                    value = (value ?? 0) * 10 + digit
                    position += 1
                    if value! > LinearRegex.maxRepeat { return LinearRegex.maxRepeat + 1 }
                }
                return value
            }
            guard let min = number() else { position = start; return nil }
            var max: Int? = min
            if peek == "," {
                position += 1
                max = number()
            }
            guard peek == "}" else { position = start; return nil }
            position += 1
            guard min <= LinearRegex.maxRepeat, (max ?? 0) <= LinearRegex.maxRepeat else {
                throw RegexError("a count may be at most \(LinearRegex.maxRepeat)", offset: start)
            }
            if let max, max < min { throw RegexError("{\(min),\(max)}: the maximum is below the minimum", offset: start) }
            return (min, max)
        }

        mutating func parseAtom() throws(RegexError) -> Node {
            let at = position
            let c = scalars[position]
            position += 1
            switch c {
            case "(":
                depth += 1
                guard depth <= 100 else { throw RegexError("groups nest deeper than 100", offset: at) }
                if peek == "?" {
                    guard position + 1 < scalars.count, scalars[position + 1] == ":" else {
                        throw RegexError("only (?: … ) groups are supported (no look-around or flags)", offset: at)
                    }
                    position += 2
                }
                let inner = try parseAlternation()
                guard peek == ")" else { throw RegexError("missing ')'", offset: at) }
                position += 1
                depth -= 1
                return inner
            case "*", "+", "?":
                throw RegexError("nothing to repeat", offset: at)
            case ".": return .atom(.any)
            case "^": return .atom(.textStart)
            case "$": return .atom(.textEnd)
            case "[": return .atom(try parseClass(openedAt: at))
            case "\\": return .atom(try parseEscape(at: at, inClass: false).instruction)
            default: return .atom(.scalar(c))
            }
        }

        enum Escaped {
            case scalar(Unicode.Scalar)
            case set(CharacterSet, negated: Bool)

            var instruction: Instruction {
                switch self {
                case .scalar(let s): .scalar(s)
                case .set(let set, let negated): .set(set, negated: negated)
                }
            }
        }

        static let digits = CharacterSet(ranges: [0x30...0x39])
        static let word = CharacterSet(ranges: [0x30...0x39, 0x41...0x5a, 0x5f...0x5f, 0x61...0x7a])
        static let space = CharacterSet(ranges: [0x09...0x0d, 0x20...0x20])

        mutating func parseEscape(at: Int, inClass: Bool) throws(RegexError) -> Escaped {
            guard let c = peek else { throw RegexError("the pattern ends with '\\'", offset: at) }
            position += 1
            switch c {
            case "d": return .set(Self.digits, negated: false)
            case "D": return .set(Self.digits, negated: true)
            case "w": return .set(Self.word, negated: false)
            case "W": return .set(Self.word, negated: true)
            case "s": return .set(Self.space, negated: false)
            case "S": return .set(Self.space, negated: true)
            case "n": return .scalar("\n")
            case "t": return .scalar("\t")
            case "r": return .scalar("\r")
            default:
                guard c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c) else {
                    throw RegexError("unknown escape \\\(c) (back-references and other escapes are not supported)", offset: at)
                }
                return .scalar(c)
            }
        }

        mutating func parseClass(openedAt: Int) throws(RegexError) -> Instruction {
            var set = CharacterSet()
            var negated = false
            if peek == "^" {
                negated = true
                position += 1
            }
            var first = true
            while true {
                guard let c = peek else { throw RegexError("missing ']'", offset: openedAt) }
                if c == "]" && !first {
                    position += 1
                    break
                }
                first = false
                let at = position
                position += 1
                var low: Unicode.Scalar
                if c == "\\" {
                    switch try parseEscape(at: at, inClass: true) {
                    case .scalar(let s): low = s
                    case .set(let inner, let innerNegated):
                        guard !innerNegated else { throw RegexError("\\D, \\W and \\S are not supported inside [ ]", offset: at) }
                        set.ranges += inner.ranges
                        continue
                    }
                } else {
                    low = c
                }
                if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                    position += 1
                    let highAt = position
                    var high = scalars[position]
                    position += 1
                    if high == "\\" {
                        guard case .scalar(let s) = try parseEscape(at: highAt, inClass: true) else {
                            throw RegexError("a range must end with a character", offset: highAt)
                        }
                        high = s
                    }
                    guard low.value <= high.value else { throw RegexError("range \(low)-\(high) is backwards", offset: at) }
                    set.ranges.append(low.value...high.value)
                } else {
                    set.ranges.append(low.value...low.value)
                }
                _ = low
            }
            return .set(set, negated: negated)
        }
    }

    struct Compiler {
        var program: [Instruction] = []

        mutating func append(_ instruction: Instruction) throws(RegexError) -> Int {
            guard program.count < LinearRegex.maxProgram else {
                throw RegexError("the pattern expands to more than \(LinearRegex.maxProgram) steps; use smaller counts", offset: 0)
            }
            program.append(instruction)
            return program.count - 1
        }

        mutating func emit(_ node: Node) throws(RegexError) {
            switch node {
            case .empty:
                break
            case .atom(let instruction):
                _ = try append(instruction)
            case .sequence(let items):
                for item in items { try emit(item) }
            case .alternation(let branches):
                var jumps: [Int] = []
                for (i, branch) in branches.enumerated() {
                    if i < branches.count - 1 {
                        let split = try append(.split(0, 0))
                        try emit(branch)
                        jumps.append(try append(.jump(0)))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repeated(let inner, let min, let max):
                for _ in 0..<min { try emit(inner) }
                if let max {
                    // Each optional copy may be skipped to the end.
                    var splits: [Int] = []
                    for _ in min..<max {
                        splits.append(try append(.split(0, 0)))
                        try emit(inner)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let split = try append(.split(0, 0))
                    try emit(inner)
                    _ = try append(.jump(split))
                    program[split] = .split(split + 1, program.count)
                }
            }
        }
    }
}
