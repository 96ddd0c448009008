import EdgyTestSupport
import Foundation
import Testing

/// Many clients reading tasks at once while others run them, against a real `edgyd`. Reads of the
/// store that finish on a reader's thread hand their connection back only once their task resumes
/// on the daemon's event loop; a read that blocked that loop waiting for a free connection once
/// wedged the whole daemon within a second of this load: no answer to anything, not even
/// `/readyz`, and no exit on SIGTERM.
@Suite(.tags(.root), .requiresRoot, .timeLimit(.minutes(3)))
struct ConcurrentReadsDaemonTests {
    @Test func sixteenReadersAndFourRunnersAreAllAnswered() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let (created, task) = try daemon.syncRequest("POST", "/v1/tasks?wait=30", json: ["command": ["/bin/true"]])
        #expect(created == 200)
        let id = try #require((task as? [String: Any])?["id"] as? String)

        // curl, one process a request: sixteen loops reading the task, four running new ones, for
        // four seconds. Each request has ten seconds; a wedged daemon answers none (status 000).
        let output = try daemon.shell("""
            end=$(($(date +%s) + 4)); dir=$(mktemp -d)
            for i in $(seq 16); do (while [ "$(date +%s)" -lt $end ]; do
                curl -s -o /dev/null -w '%{http_code}\\n' --max-time 10 -H "Authorization: Bearer $TOKEN" "$EDGY/v1/tasks/\(id)"
            done > "$dir/get.$i") & done
            for i in $(seq 4); do (while [ "$(date +%s)" -lt $end ]; do
                curl -s -o /dev/null -w '%{http_code}\\n' --max-time 10 -H "Authorization: Bearer $TOKEN" \\
                    -H 'Content-Type: application/json' -d '{"command": ["/bin/true"]}' "$EDGY/v1/tasks?wait=30"
            done > "$dir/post.$i") & done
            wait
            for f in "$dir"/get.*; do sed 's/^/get /' "$f"; done
            for f in "$dir"/post.*; do sed 's/^/post /' "$f"; done
            rm -rf "$dir"
            """, timeout: .seconds(90))
        let answers = output.split(separator: "\n").map { $0.split(separator: " ") }
        let gets = answers.filter { $0.first == "get" }.map { String($0.last ?? "") }
        let posts = answers.filter { $0.first == "post" }.map { String($0.last ?? "") }
        #expect(gets.count >= 50 && posts.count >= 4, "\(gets.count) reads and \(posts.count) runs in four seconds")
        #expect(gets.allSatisfy { $0 == "200" }, "reads answered: \(Dictionary(gets.map { ($0, 1) }, uniquingKeysWith: +))")
        #expect(posts.allSatisfy { $0 == "200" }, "runs answered: \(Dictionary(posts.map { ($0, 1) }, uniquingKeysWith: +))")

        let (ready, _) = try daemon.syncRequest("GET", "/readyz", authorized: false, timeout: 10)
        #expect(ready == 200)
        daemon.stop()
        #expect(daemon.termination?.code == 0, "\(daemon.log().suffix(3000))")
    }
}
