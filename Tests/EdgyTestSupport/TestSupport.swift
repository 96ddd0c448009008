import EdgyJail
import EdgyModel
import EdgyPolicy
import Glibc

/// Shared fixtures for tests that run real jails.
public enum TestSupport {
    /// The repository root, from this file's path.
    public static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    /// Where `swift build` put the executables (the probe among them).
    public static var productsDirectory: String {
        var path = CommandLine.arguments[0]
        // swift-testing runs from .build/<triple>/debug/EdgyPackageTests.xctest/...
        while !path.isEmpty, !FileSystem.exists(path + "/edgy-probe") {
            guard let slash = path.lastIndex(of: "/") else { break }
            path = String(path[..<slash])
        }
        if FileSystem.exists(path + "/edgy-probe") { return path }
        return repositoryRoot + "/.build/debug"
    }

    /// A policy like the shipped `base`: the host's /usr and friends, read-only; default seccomp.
    public static func policy(
        _ command: [String] = [], name: String = "test", configure: (inout Policy) -> Void = { _ in }
    ) -> Policy {
        var policy = Policy(name: name)
        policy.run.command = command
        policy.run.env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work"]
        policy.mounts = [
            Policy.Mount(source: "/usr"),
            Policy.Mount(source: "/bin", required: false),
            Policy.Mount(source: "/sbin", required: false),
            Policy.Mount(source: "/lib", required: false),
            Policy.Mount(source: "/lib64", required: false),
            Policy.Mount(source: "/etc/alternatives", required: false),
            Policy.Mount(source: "/etc/ld.so.cache", required: false),
        ]
        policy.limits.wallTimeS = 20
        configure(&policy)
        return policy
    }

    /// The build products (the probe among them), bound read-only into jails at /opt/edgy-build.
    public static func withProbe(_ policy: Policy) -> Policy {
        var policy = policy
        policy.mounts.append(Policy.Mount(source: productsDirectory, destination: "/opt/edgy-build"))
        // SwiftPM links even C executables against the Swift runtime, at its toolchain path.
        policy.mounts.append(Policy.Mount(source: swiftRuntimeDirectory, required: false))
        return policy
    }

    /// Where the toolchain's shared Swift runtime lives (the probe's RUNPATH).
    public static let swiftRuntimeDirectory = "/opt/swift/usr/lib/swift/linux"

    /// The probe's path inside a jail made `withProbe`.
    public static let probe = "/opt/edgy-build/edgy-probe"
}

public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}

extension TestSupport {
    /// One supervisor for a test process; cgroups as the host has them.
    public static func supervisor(cgroups: Bool = true) throws -> JailSupervisor {
        try JailSupervisor(cgroups: cgroups ? sharedCgroups() : nil)
    }

    /// Runs `script` with /bin/sh in a jail built from `policy` (the test policy by default).
    public static func sh(
        _ script: String, files: [TaskFile] = [], stdin: [UInt8] = [],
        configure: (inout Policy) -> Void = { _ in }
    ) async throws -> AttemptReport {
        let policy = Self.policy(["/bin/sh", "-c", script], configure: configure)
        return try await supervisor().run(JailRequest(policy: policy, files: files, stdin: stdin))
    }

    /// The number of fds this process has open: a spawn must not change it.
    ///
    /// The shared cgroup manager is made first: it holds its parent directories open for the
    /// process's life, and must not be counted after a test's spawn but not before.
    public static func openDescriptorCount() -> Int {
        _ = try? sharedCgroups()
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while readdir(dir) != nil { count += 1 }
        return count - 3  // ".", "..", and the directory's own fd
    }
}

extension TestSupport {
    /// How much slower than native this host runs code: `EDGY_TEST_TIME_SCALE`, 1 by default.
    /// scripts/vm-test sets it when its guest is emulated (TCG), so that latency bounds measure
    /// responsiveness rather than the emulator.
    public static let timeScale: Double = {
        guard let text = getenv("EDGY_TEST_TIME_SCALE").map({ String(cString: $0) }), let value = Double(text), value >= 1 else { return 1 }
        return value
    }()
}
