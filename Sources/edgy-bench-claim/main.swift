// PostgreSQL claim benchmark: the latency of `claim` (one statement: pick, lock, tenant limit,
// turn, lease, event, notify) on a fresh database, next to the latency of `task(id:)` (one indexed
// SELECT) on the same connection pool, as a ratio: how many plain round trips a claim costs.
//
// Usage: edgy-bench-claim URL [-n N]   (scripts/bench-claim starts a throwaway server)
import EdgyModel
import EdgyStore
import EdgyStorePostgres
import Foundation
import Logging

var arguments = Array(CommandLine.arguments.dropFirst())
guard let url = arguments.first, url.hasPrefix("postgres") else {
    print("usage: edgy-bench-claim postgres://… [-n N]")
    exit(2)
}
var count = 500
if let index = arguments.firstIndex(of: "-n"), index + 1 < arguments.count, let n = Int(arguments[index + 1]) { count = n }

var logger = Logger(label: "edgy-bench-claim")
logger.logLevel = .warning
let store = try PostgresTaskStore(url: url, logger: logger)
let running = Task { try? await store.run() }
try await store.migrate()

func nanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
func median(_ samples: [Double]) -> Double { samples.sorted()[samples.count / 2] }
func p95(_ samples: [Double]) -> Double { let s = samples.sorted(); return s[min(s.count - 1, Int(Double(s.count) * 0.95))] }

// Tasks of four tenants, so that fair ordering and the per-tenant limit are exercised.
var ids: [UUID] = []
for i in 0..<count {
    let spec = TaskSpec(name: "t\(i)", policy: "sh", files: [TaskFile(path: "main.sh", contents: Array("true\n".utf8))])
    let task = TaskRecord(tenant: "tenant\(i % 4)", spec: spec, createdAt: Date(timeIntervalSinceNow: -1))
    try await store.create(task, limits: QueueLimits())
    ids.append(task.id)
}

var claims: [Double] = []
var gets: [Double] = []
for i in 0..<count {
    var start = nanos()
    _ = try await store.task(id: ids[i])
    gets.append(Double(nanos() - start) / 1e6)
    start = nanos()
    let claimed = try await store.claim(worker: "bench", leaseDuration: .seconds(60), now: Date(), maxRunningPerTenant: count)
    claims.append(Double(nanos() - start) / 1e6)
    guard claimed != nil else {
        print("claim \(i) found nothing")
        exit(1)
    }
}
running.cancel()
func ms(_ v: Double) -> String { String(format: "%.2f", v) }
print("edgy-bench-claim: \(count) claims on PostgreSQL, one at a time")
print("claim (one statement)   median \(ms(median(claims))) ms   p95 \(ms(p95(claims))) ms")
print("task (one SELECT)       median \(ms(median(gets))) ms   p95 \(ms(p95(gets))) ms")
print("ratio claim/task: median \(ms(median(claims) / median(gets)))   (goal: claim p50 < 2 ms)")
