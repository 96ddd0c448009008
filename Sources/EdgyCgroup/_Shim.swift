// TEMPORARY: replaced by the cgroup branch at merge.
import Glibc
public struct CgroupLimits: Sendable, Hashable { public var memoryBytes: UInt64?; public var pidsMax: Int?; public var cpuMaxCores: Double?
  public init(memoryBytes: UInt64? = nil, pidsMax: Int? = nil, cpuMaxCores: Double? = nil) { self.memoryBytes = memoryBytes; self.pidsMax = pidsMax; self.cpuMaxCores = cpuMaxCores } }
public struct CgroupStats: Sendable, Hashable { public var memoryPeakBytes: UInt64?; public var oomKills: Int = 0; public var memoryLimitHits: Int = 0; public var cpuUsageNanos: UInt64?; public var pidsPeak: Int?; public var pidsLimitHits: Int = 0 }
public struct CgroupError: Error, Sendable, CustomStringConvertible { public var description: String { "shim" } }
public enum CgroupVersion: String, Sendable { case v1, v2 }
public final class CgroupHost: Sendable { public let version: CgroupVersion = .v1; public static func detect() throws(CgroupError) -> CgroupHost { CgroupHost() } }
public final class CgroupManager: Sendable {
  public init(host: CgroupHost, parentName: String = "edgy") throws(CgroupError) {}
  public func create(name: String, limits: CgroupLimits) throws(CgroupError) -> JailCgroup { JailCgroup(name: name) }
  public func reapLeftovers() -> Int { 0 }
}
public final class JailCgroup: Sendable {
  public let name: String
  init(name: String) { self.name = name }
  public var cloneIntoFD: Int32? { nil }
  public func attach(pid: pid_t) throws(CgroupError) {}
  public func processes() -> [pid_t] { [] }
  public func kill() {}
  public func stats() -> CgroupStats { CgroupStats() }
  public func remove() throws(CgroupError) {}
}
