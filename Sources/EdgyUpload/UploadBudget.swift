/// The bytes of file contents one request may produce, counted across all of its parts and
/// archives. Decoders charge a file's size before producing it, so the limit holds while inflating.
public struct UploadBudget: Sendable {
    public let limit: Int
    public private(set) var used = 0

    public init(limit: Int) { self.limit = max(limit, 0) }

    public var remaining: Int { limit - used }

    /// Takes `bytes` from the budget; false (and nothing taken) when they do not fit.
    public mutating func charge(_ bytes: Int) -> Bool {
        guard bytes >= 0, bytes <= remaining else { return false }
        used += bytes
        return true
    }

    /// The message of a refusal once the budget is spent.
    public var exhausted: String { "the upload unpacks to more than \(limit) bytes" }
}
