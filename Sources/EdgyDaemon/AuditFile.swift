import EdgyAuth

/// The audit log of a state directory: `audit.log`, JSON lines, appended, mode 0600.
/// `edgyd` writes it, and so do offline `edgy token` commands run against the same directory.
enum AuditFile {
    static let fileName = "audit.log"

    static func open(in stateDirectory: String) throws(ConfigurationError) -> AuditLog {
        do {
            return try AuditLog(path: stateDirectory + "/" + fileName)
        } catch {
            throw ConfigurationError("cannot open the audit log: \(error)")
        }
    }
}
