// Jail start-up benchmark: `/bin/true` under the default
// policy through one resident `JailSupervisor` (real cgroups, limits on), against bare
// posix_spawn, bubblewrap with comparable isolation, and the `edgy run` CLI. The tools are
// interleaved round-robin per iteration so that host noise falls on all of them alike.
//
// Two views of the same run (`--view`): "concurrent" starts each tool right after the previous
// one, so the pool's background refill of the last Edgy jail (clone, cgroup v1 mkdir/attach/rmdir,
// which stall every fork and exit on the host for an RCU grace period) overlaps the next tool;
// "settled" waits until the pool is idle before timing any tool, so every tool, Edgy included, is
// timed on a quiet host. Both are printed; the requirement is to win in both.
//
// The `fork server` row runs the same request through a second supervisor whose jails are cloned
// by `edgy-forkserver` (built beside edgy-bench) instead of by this multithreaded process.
//
// The `egress` row runs the same request under `[network] mode = "egress"` (a veth pair and
// nftables chains per jail, made while the jail is parked), next to `edgy` (mode none).
//
// `edgy run` is timed twice: alone (EDGY_HELPER_SOCKET=off), and handed to an `edgy helper` this
// program starts on a socket of its own.
//
// Usage: edgy-bench [-n N] [--policy FILE] [--edgy PATH] [--bwrap PATH] [--pool N] [--no-cli]
//                   [--mode back-to-back|spaced] [--view concurrent|settled] [--throughput-only edgy|forkserver|bwrap|bare]
//                   [--spare-groups N]
import EdgyCgroup
import EdgyJail
import EdgyModel
import EdgyNetwork
import EdgyPolicy
import EdgySystem
import Glibc

// The supervisors' memory behaves as in edgyd, which keeps freed heap for reuse.
keepFreedMemoryForReuse()

// ---- options ----------------------------------------------------------------------------------

var iterations = 200
var policyFile = "policies/default.toml"
var edgyCLI = ".build/release/edgy"
var bwrapPath = "/usr/bin/bwrap"
var poolSize = 2
var withCLI = true
var modes = ["back-to-back", "spaced"]
var views = ["concurrent", "settled"]
/// cgroup v1 groups kept between jails, as edgyd keeps them (`CgroupManager`'s `spareGroups`); 0 to
/// make and remove every group, for comparison.
var benchSpareGroups = 16
/// For profiling: skip the latency tables and time only this tool's throughput (edgy, bwrap, bare).
var throughputOnly: String?
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let a = arguments.next() {
    switch a {
    case "-n": iterations = Int(arguments.next() ?? "") ?? iterations
    case "--policy": policyFile = arguments.next() ?? policyFile
    case "--edgy": edgyCLI = arguments.next() ?? edgyCLI
    case "--bwrap": bwrapPath = arguments.next() ?? bwrapPath
    case "--pool": poolSize = Int(arguments.next() ?? "") ?? poolSize
    case "--no-cli": withCLI = false
    case "--mode": modes = [arguments.next() ?? "back-to-back"]
    case "--view": views = [arguments.next() ?? "settled"]
    case "--throughput-only": throughputOnly = arguments.next() ?? "edgy"
    case "--spare-groups": benchSpareGroups = Int(arguments.next() ?? "") ?? benchSpareGroups
    default:
        print("usage: edgy-bench [-n N] [--policy FILE] [--edgy PATH] [--bwrap PATH] [--pool N] [--no-cli] [--mode back-to-back|spaced] [--view concurrent|settled] [--throughput-only TOOL] [--spare-groups N]")
        exit(2)
    }
}

func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func sleepMs(_ ms: Int) {
    var request = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

// ---- the external tools: posix_spawn + waitpid ------------------------------------------------

/// Spawns `argv` with stdin/stdout/stderr on /dev/null and waits for it. Returns the exit status.
/// This process's environment with `overrides` ("NAME=VALUE") in place of those variables.
func environment(overriding overrides: [String]) -> [String] {
    let names = Set(overrides.map { $0.prefix { $0 != "=" } })
    var inherited: [String] = []
    var at = environ
    while let entry = at.pointee {
        let text = String(cString: entry)
        if !names.contains(text.prefix { $0 != "=" }) { inherited.append(text) }
        at += 1
    }
    return inherited + overrides
}

/// With `environment`, the child gets that instead of this process's.
func spawnAndWait(_ argv: [String], environment: [String]? = nil) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd in Int32(0)...2 {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    var cEnv = environment.map { $0.map { strdup($0) } + [nil] }
    defer { for p in cEnv ?? [] { free(p) } }
    var pid: pid_t = 0
    let rc = cEnv == nil
        ? posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        : posix_spawn(&pid, argv[0], &actions, nil, cArgs, &cEnv!)
    guard rc == 0 else { return -rc }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}

let bareArgv = ["/bin/true"]
let bwrapArgv = [
    bwrapPath, "--unshare-all", "--die-with-parent", "--new-session",
    "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
    "/bin/true",
]
let cliArgv = [edgyCLI, "run", "--policy", policyFile, "--", "/bin/true"]
let helperSocket = "/tmp/edgy-bench-helper-\(getpid()).sock"
let alone = environment(overriding: ["EDGY_HELPER_SOCKET=off"])
let throughHelper = environment(overriding: ["EDGY_HELPER_SOCKET=\(helperSocket)"])

/// `edgy helper` on `helperSocket`, once it answers a run; nil if it does not within 20 s.
@MainActor func startHelper() -> pid_t? {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd in Int32(0)...2 {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    let argv = [edgyCLI, "helper", "--socket", helperSocket, "--pool", "\(poolSize)"]
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, edgyCLI, &actions, nil, cArgs, environ) == 0 else { return nil }
    for _ in 0..<200 {
        var status = stat()
        if stat(helperSocket, &status) == 0 { return pid }
        sleepMs(100)
    }
    kill(pid, SIGKILL)
    return nil
}

// ---- Edgy in process --------------------------------------------------------------------------

let loaded: LoadedPolicy
do {
    loaded = try PolicyLoader.load(file: policyFile)
} catch {
    print("cannot load \(policyFile): \(error)")
    exit(1)
}
let request = JailRequest(policy: loaded.policy, policyDigest: loaded.digest, command: ["/bin/true"])
let egressRequest: JailRequest = {
    var policy = loaded.policy
    policy.network = Policy.Network(mode: .egress, allow: ["198.51.100.10:443"])
    return JailRequest(policy: policy, policyDigest: policy.digest, command: ["/bin/true"])
}()
/// Every manager made here, so that their kept groups go at the end (`exit` runs no deinit).
var managers: [CgroupManager] = []
let supervisor: JailSupervisor
do {
    let cgroups = try CgroupManager(host: try CgroupHost.detect(), spareGroups: benchSpareGroups)
    managers.append(cgroups)
    var host = JailHostConfiguration()
    host.poolSize = poolSize
    // Its own table, interfaces, range and resolver port: a daemon on the host keeps its own.
    host.egress = EgressConfiguration(
        range: IPv4Network.parse("10.242.0.0/24")!, table: "edgybench", interfacePrefix: "edgyb", resolverPort: 5398)
    supervisor = try JailSupervisor(host: host, cgroups: cgroups)
} catch {
    print("cannot start the supervisor: \(error)")
    exit(1)
}
let forkSupervisor: JailSupervisor? = {
    guard let executable = ForkServer.besideExecutable() else {
        print("no fork-server row: edgy-forkserver is not beside edgy-bench")
        return nil
    }
    var host = JailHostConfiguration()
    host.poolSize = poolSize
    host.forkServer = executable
    guard let cgroups = try? CgroupManager(host: CgroupHost.detect(), spareGroups: benchSpareGroups) else { return nil }
    managers.append(cgroups)
    return try? JailSupervisor(host: host, cgroups: cgroups)
}()

func runEdgy(_ request: JailRequest = request, on supervisor: JailSupervisor = supervisor) async -> Bool {
    let report = await supervisor.run(request)
    if report.outcome != .exited || report.exitCode != 0 {
        print("edgy: unexpected report: \(report.outcome) \(report.signalName ?? "") \(report.seccompSyscall.map { "\($0)" } ?? "") \(report.setup.map { "\($0)" } ?? "")")
        return false
    }
    return true
}

// Sanity checks: every tool must actually run /bin/true successfully before we time it.
guard await runEdgy() else { exit(1) }
if let forkSupervisor, !(await runEdgy(on: forkSupervisor)) { exit(1) }
var withEgress = supervisor.egressUnavailable == nil
if let why = supervisor.egressUnavailable { print("no egress row: \(why)") }
if withEgress {
    let ran = await runEdgy(egressRequest)
    withEgress = ran
}
guard spawnAndWait(bwrapArgv) == 0 else {
    print("bwrap failed: \(bwrapArgv.joined(separator: " "))")
    exit(1)
}
if withCLI && spawnAndWait(cliArgv, environment: alone) != 0 {
    print("edgy CLI failed (build it with `swift build -c release --product edgy --product edgy-cli`): \(cliArgv.joined(separator: " "))")
    withCLI = false
}
var helperPID = withCLI ? startHelper() : nil
if withCLI && (helperPID == nil || spawnAndWait(cliArgv, environment: throughHelper) != 0) {
    print("edgy run through `edgy helper` failed: no helper row")
    if let helperPID { kill(helperPID, SIGKILL) }
    helperPID = nil
}

// ---- latency, round-robin ---------------------------------------------------------------------

struct Stats {
    var samples: [Double] = []  // milliseconds
    func quantile(_ q: Double) -> Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return .nan }
        return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
    }
    var median: Double { quantile(0.5) }
    var p95: Double { quantile(0.95) }
}

enum Tool: String, CaseIterable {
    case edgy = "edgy (in-process)"
    case forkServer = "edgy (fork server)"
    case egress = "edgy egress"
    case bare = "bare fork+exec"
    case bwrap = "bubblewrap"
    case cli = "edgy run (CLI)"
    case cliHelper = "edgy run (helper)"
}

func measure(_ tool: Tool) async -> Double {
    let start = nowNanos()
    switch tool {
    case .edgy: _ = await runEdgy()
    case .forkServer: _ = await runEdgy(on: forkSupervisor!)
    case .egress: _ = await runEdgy(egressRequest)
    case .bare: _ = spawnAndWait(bareArgv)
    case .bwrap: _ = spawnAndWait(bwrapArgv)
    case .cli: _ = spawnAndWait(cliArgv, environment: alone)
    case .cliHelper: _ = spawnAndWait(cliArgv, environment: throughHelper)
    }
    return Double(nowNanos() - start) / 1e6
}

func fmt(_ v: Double, _ width: Int = 8, _ digits: Int = 2) -> String {
    var s: String
    if v.isFinite {
        let scale = digits == 1 ? 10.0 : 100.0
        let scaled = Int((abs(v) * scale).rounded())
        let whole = scaled / Int(scale), frac = scaled % Int(scale)
        let fracText = String(frac)
        s = (v < 0 && scaled > 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: max(0, (digits == 1 ? 1 : 2) - fracText.count)) + fracText
    } else {
        s = "-"
    }
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }

let tools: [Tool] = [.edgy] + (forkSupervisor != nil ? [.forkServer] : []) + (withEgress ? [.egress] : []) + [.bare, .bwrap] + (withCLI ? [.cli] : [])
    + (helperPID != nil ? [.cliHelper] : [])

print("edgy-bench: /bin/true x \(iterations) per tool, policy \(policyFile), cgroup limits on, pool \(poolSize) per shape, tools interleaved")
for mode in modes where throughputOnly == nil {
    var stats: [String: [Tool: Stats]] = [:]
    var unsettled = 0
    for _ in 0..<iterations {
        for view in views {
            for tool in tools {
                if view == "settled" {
                    let settled = await supervisor.waitUntilPoolSettled()
                    let forkSettled = await forkSupervisor?.waitUntilPoolSettled() ?? true
                    if !settled || !forkSettled { unsettled += 1 }
                }
                if mode == "spaced" { sleepMs(50) }
                stats[view, default: [:]][tool, default: Stats()].samples.append(await measure(tool))
            }
        }
    }
    for view in views {
        let table = stats[view]!
        print("\n== \(mode)\(mode == "spaced" ? " (50 ms pause before each start)" : ""), \(view)\(view == "settled" ? " (pool idle before each start)" : " (pool refills while the next tool runs)") ==")
        print(pad("tool", 20) + "  median ms   p95 ms")
        for tool in tools {
            let s = table[tool]!
            print(pad(tool.rawValue, 20) + "  " + fmt(s.median, 9) + fmt(s.p95, 9))
        }
        let e = table[.edgy]!, b = table[.bwrap]!, bare = table[.bare]!
        print("ratio edgy/bwrap: median \(fmt(e.median / b.median, 0)), p95 \(fmt(e.p95 / b.p95, 0))")
        print("ratio edgy/bare:  median \(fmt(e.median / bare.median, 0)), p95 \(fmt(e.p95 / bare.p95, 0))")
        print("edgy median \(e.median < b.median ? "BEATS" : "does NOT beat") bubblewrap's (\(fmt(e.median, 0)) vs \(fmt(b.median, 0)) ms)")
        if let f = table[.forkServer] {
            print("ratio fork server/bwrap: median \(fmt(f.median / b.median, 0)); fork server/bare: \(fmt(f.median / bare.median, 0)); fork server/in-process: \(fmt(f.median / e.median, 0))")
        }
        if let c = table[.cli] {
            let helped = table[.cliHelper].map { ", through a helper \(fmt($0.median / b.median, 0))" } ?? ""
            print("ratio edgy run/bwrap: median alone \(fmt(c.median / b.median, 0))\(helped)")
        }
        if let g = table[.egress] {
            print("egress - none: median \(fmt(g.median - e.median, 0)) ms, p95 \(fmt(g.p95 - e.p95, 0)) ms (ratio \(fmt(g.median / e.median, 0)); goal: median at most 3 ms above)")
        }
    }
    if unsettled > 0 { print("(the pool did not settle within 2 s before \(unsettled) starts)") }
}

// ---- throughput with 2 parallel runners -------------------------------------------------------

func throughput(_ tool: Tool, runners: Int, perRunner: Int) async -> Double {
    let start = nowNanos()
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<runners {
            group.addTask {
                for _ in 0..<perRunner {
                    switch tool {
                    case .edgy: _ = await runEdgy()
                    case .forkServer: _ = await runEdgy(on: forkSupervisor!)
                    case .egress: _ = await runEdgy(egressRequest)
                    case .bare: _ = spawnAndWait(bareArgv)
                    case .bwrap: _ = spawnAndWait(bwrapArgv)
                    case .cli: _ = spawnAndWait(cliArgv, environment: alone)
                    case .cliHelper: _ = spawnAndWait(cliArgv, environment: throughHelper)
                    }
                }
            }
        }
    }
    return Double(runners * perRunner) / (Double(nowNanos() - start) / 1e9)
}

let perRunner = max(10, iterations / 2)
print("\n== throughput: 2 parallel runners, \(perRunner) jails each, back to back ==")
let throughputTools: [Tool] = switch throughputOnly {
case "edgy": [.edgy]
case "forkserver": forkSupervisor != nil ? [.forkServer] : []
case "bwrap": [.bwrap]
case "bare": [.bare]
default: [.edgy] + (forkSupervisor != nil ? [.forkServer] : []) + [.bwrap, .bare]
}
for tool in throughputTools {
    let rate = await throughput(tool, runners: 2, perRunner: perRunner)
    print(pad(tool.rawValue, 20) + "  " + fmt(rate, 9, 1) + " jails/s")
}
supervisor.shutdown()
forkSupervisor?.shutdown()
for manager in managers { manager.removeSpareGroups() }
if let helperPID {
    kill(helperPID, SIGTERM)
    var status: Int32 = 0
    waitpid(helperPID, &status, 0)
}
