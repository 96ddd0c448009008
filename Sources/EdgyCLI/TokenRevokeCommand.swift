import ArgumentParser
import EdgyAuth
import EdgyStoreSQLite
import Foundation

/// `edgy token revoke ID`: the token is refused (401) from then on.
public struct TokenRevokeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by its id.")

    @OptionGroup public var target: TokenTarget
    @Argument(help: "The token's id (from `edgy token list`).") public var id: String

    public init() {}

    public func validate() throws {
        guard UUID(uuidString: id) != nil else { throw ValidationError("\(id) is not a token id (a UUID)") }
    }

    public func run() async throws {
        let uuid = UUID(uuidString: id)!
        switch try target.backend() {
        case .server(let client):
            _ = try await client.request("DELETE", "/v1/tokens/" + uuid.uuidString.lowercased())
        case .offline(let store, let audit):
            guard try await store.revokeToken(id: uuid, at: Date()) else { throw ValidationError("no token \(id)") }
            audit.record(TokenTarget.offlineAudit("token.revoke", tokenID: uuid, detail: "revoked"))
        }
        print("revoked \(uuid.uuidString.lowercased())")
    }
}
