import ArgumentParser
import EdgyAuth
import EdgyStoreSQLite
import Foundation

/// `edgy token list`: every token (never a secret), as a table or JSON.
public struct TokenListCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (without their secrets).")

    @OptionGroup public var target: TokenTarget
    @Option(help: "Only this tenant's tokens.") public var tenant: String?
    @Flag(help: "Print JSON.") public var json = false

    public init() {}

    struct Page: Decodable { var tokens: [TokenInfo] }

    public func run() async throws {
        let tokens: [TokenInfo]
        switch try target.backend() {
        case .server(let client):
            var path = "/v1/tokens"
            if let tenant, let escaped = tenant.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) { path += "?tenant=" + escaped }
            tokens = try JSONDecoder().decode(Page.self, from: try await client.request("GET", path)).tokens
        case .offline(let store, let audit):
            tokens = try await store.listTokens(tenant: tenant).map { TokenInfo($0) }
            audit.record(TokenTarget.offlineAudit("token.list", tokenID: nil, detail: tenant.map { "tenant \($0)" } ?? "all tenants"))
        }
        if json {
            print(try TokenInfo.json(tokens))
            return
        }
        let rows = [["ID", "NAME", "ROLE", "TENANT", "POLICIES", "STATE", "EXPIRES"]] + tokens.map {
            [$0.id, $0.name, $0.role, $0.tenant, $0.policies?.joined(separator: ",") ?? "*", $0.state, $0.expiresAt ?? "-"]
        }
        let widths = (0..<7).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
        }
    }
}
