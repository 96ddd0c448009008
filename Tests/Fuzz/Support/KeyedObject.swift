/// An object whose keys come in the given order, repeats and all, each with its index: what a
/// hand-written `encode(to:)` may write, which no dictionary can. The JSON encoder's tests and its
/// fuzz target both encode it.
public struct KeyedObject: Encodable {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public var keys: [String]

    public init(_ keys: [String]) {
        self.keys = keys
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for (index, key) in keys.enumerated() { try c.encode(index, forKey: Key(stringValue: key)) }
    }
}
