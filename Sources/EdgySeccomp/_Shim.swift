// TEMPORARY: replaced by the seccomp branch at merge.
import EdgyPolicy
public struct SeccompError: Error, Sendable, CustomStringConvertible { public var description: String { "shim" } }
public struct SeccompProgram: Sendable, Hashable { public let bytes: [UInt8] }
public enum SeccompCompiler {
    public static func compile(_ seccomp: Policy.Seccomp) throws(SeccompError) -> SeccompProgram { SeccompProgram(bytes: []) }
}
