import EdgyAuth
import Foundation
import Glibc
import Logging

/// On first start the daemon creates an admin token and writes it to the state directory, readable
/// by root only; the store keeps only its hash. Later starts make sure the hash is still there.
enum AdminTokenBootstrap {
    static let fileName = "admin.token"

    static func ensure(in stateDirectory: String, tokens: any TokenStore, logger: Logger) async throws {
        let path = stateDirectory + "/" + fileName
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            let token = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if try await tokens.principal(forTokenHash: TokenSecret.hash(token)) == nil {
                try await tokens.insertToken(Principal(name: "admin", role: .admin, tenant: "default"), tokenHash: TokenSecret.hash(token))
            }
            logger.info("admin token", metadata: ["file": "\(path)"])
            return
        }
        let token = TokenSecret.generate()
        try await tokens.insertToken(Principal(name: "admin", role: .admin, tenant: "default"), tokenHash: TokenSecret.hash(token))
        // Created 0600 before the secret is written: there is no moment where others can read it.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array((token + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw ConfigurationError("cannot write \(path)") }
        logger.notice("created an admin token; use it as `Authorization: Bearer $(cat \(path))`", metadata: ["file": "\(path)"])
    }
}
