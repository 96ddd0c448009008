import EdgyAuth
import EdgyModel
import EdgyPolicy
import EdgyPostgresTestSupport
import EdgyStore
import EdgyStorePostgres
import Foundation
import Testing

// Fixtures of the PostgreSQL-specific tests. The TaskStore / TokenStore contract itself runs
// against PostgreSQL in the shared suite (Tests/EdgyStoreTests, factory `postgres`).

func counts(_ store: some TaskStore, tenant: String?) async throws -> [Int] {
    let (queued, running) = try await store.activeCounts(tenant: tenant)
    return [queued, running]
}

/// Times on whole milliseconds survive the store's microsecond rounding exactly.
func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: 1_700_000_000 + seconds) }

func makeTask(
    id: UUID = UUID(), tenant: String = "acme", name: String = "job", policy: String = "python",
    created: Double = 0, notBefore: Double? = nil, maxAttempts: Int = 3
) -> TaskRecord {
    TaskRecord(
        id: id, tenant: tenant,
        spec: TaskSpec(
            name: name, policy: policy,
            files: [TaskFile(path: "main.py", contents: Array("print('hi')\n".utf8)), TaskFile(path: "bin/run", contents: [0, 1, 255], mode: 0o755)],
            command: ["python3", "main.py"], stdin: Array("in".utf8), env: ["A": "1", "B": "two"],
            limits: { var l = LimitOverrides(); l.memoryMib = 64; l.wallTimeS = 1.5; return l }(),
            maxAttempts: maxAttempts),
        createdAt: at(created), notBefore: notBefore.map(at))
}

