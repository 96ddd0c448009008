import EdgyModel
import Foundation

/// A token as its creator gets it: the secret, shown once, and the principal it stands for.
public struct IssuedToken: Sendable {
    public var principal: Principal
    /// The bearer token. Only its hash is stored; nothing can show it again.
    public var token: String
}

public struct TokenRequestError: Error, Sendable, CustomStringConvertible {
    public var field: String
    public var description: String
    public init(field: String, _ description: String) {
        self.field = field
        self.description = description
    }
}

extension TokenStore {
    /// Creates a token: a fresh secret, its hash in the store, the secret returned once.
    /// - Throws: `TokenRequestError` for an empty name or tenant, or a policy list that is empty.
    public func issueToken(
        name: String, role: Role, tenant: String, policies: [String]? = nil, expiresAt: Date? = nil, now: Date = Date(),
        callbackURL: String? = nil
    ) async throws -> IssuedToken {
        let name = name.trimmingCharacters(in: .whitespaces)
        let tenant = tenant.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 200 else { throw TokenRequestError(field: "name", "name must be 1 to 200 characters") }
        guard !tenant.isEmpty, tenant.count <= 200 else { throw TokenRequestError(field: "tenant", "tenant must be 1 to 200 characters") }
        if let policies, policies.isEmpty || policies.contains(where: \.isEmpty) {
            throw TokenRequestError(field: "policies", "policies must name at least one policy (omit it for any the role allows)")
        }
        if let expiresAt, expiresAt <= now { throw TokenRequestError(field: "expires_in", "the expiry must be in the future") }
        let token = TokenSecret.generate()
        // Whole microseconds, as the stores keep them, so that the answer equals what a list shows.
        let created = StoreTime.rounded(now)
        let principal = Principal(
            name: name, role: role, tenant: tenant, policies: policies, createdAt: created, expiresAt: expiresAt, callbackURL: callbackURL)
        try await insertToken(principal, tokenHash: TokenSecret.hash(token))
        return IssuedToken(principal: principal, token: token)
    }
}

/// Lifetimes as people write them: `90s`, `15m`, `12h`, `30d`, `2w`, `1.5h`.
public enum TokenLifetime {
    /// The longest lifetime a token may be given: ten years.
    public static let maximum: TimeInterval = 3650 * 86_400

    /// What `parse` accepts, for error messages.
    public static let syntax = "a number with a unit s, m, h, d or w (90s, 15m, 12h, 30d, 2w), at most 3650d"

    /// Seconds, or nil unless `text` is digits (with at most one decimal point) and one of the units
    /// s, m, h, d, w, giving a lifetime of at least a second and at most `maximum`. No signs, exponents or
    /// hex, so the value never leaves a small range.
    public static func parse(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        guard let unit = text.last, let scale = units[unit] else { return nil }
        let number = text.dropLast()
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), number.utf8.count <= 16,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { ("0"..."9").contains($0) } }),
              let value = Double(number)
        else { return nil }
        let seconds = value * scale
        guard seconds >= 1, seconds <= maximum else { return nil }
        return seconds
    }
}

/// Comparison whose time does not depend on where two secrets first differ.
public enum ConstantTime {
    /// True when `a` and `b` hold the same bytes; the time depends on their lengths only.
    public static func equals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
