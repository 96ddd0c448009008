import ArgumentParser
import EdgyJail
import Foundation
import Glibc

/// `edgy helper`: keeps jails warm for `edgy run` and runs them for it (`RunHelper`).
public struct HelperCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "helper",
        abstract: "Serve `edgy run` from this process, with jails kept warm.",
        discussion: """
            While a helper listens on its socket, `edgy run` hands it each run instead of starting \
            the Swift runtime, compiling the policy's filter and cloning a jail itself: the run \
            takes a parked jail of its policy's shape. Output, report and exit status are those of \
            `edgy run` alone. Only the helper's own user can use it. Stop it with SIGTERM or Ctrl-C; \
            `EDGY_HELPER_SOCKET=off` makes `edgy run` ignore it.
            """
    )

    @Option(name: .long, help: "The socket to listen on (EDGY_HELPER_SOCKET for edgy run; default \(RunHelper.defaultSocket)).")
    var socket: String?

    @Option(name: .long, help: "Jails kept parked per policy shape.")
    var pool: Int = 2

    @Option(name: .long, help: "Exit after this many seconds without a run (0: never).")
    var idleExit: Int = 0

    @Option(name: .long, help: "Runs served at once; more are declined, and each runs alone.")
    var maxRuns: Int = 64

    public init() {}

    public mutating func validate() throws {
        guard (0...16).contains(pool) else { throw ValidationError("--pool must be 0 to 16") }
        guard idleExit >= 0 else { throw ValidationError("--idle-exit must be 0 or more") }
        guard (1...1024).contains(maxRuns) else { throw ValidationError("--max-runs must be 1 to 1024") }
    }

    public func run() async throws {
        let path = socket ?? ProcessInfo.processInfo.environment["EDGY_HELPER_SOCKET"].flatMap { $0.isEmpty || $0 == "off" ? nil : $0 }
            ?? RunHelper.defaultSocket
        let host = JailHostConfiguration(poolSize: pool, forkServer: ForkServer.besideExecutable())
        let helper: RunHelper
        do {
            helper = try RunHelper(socketPath: path, host: host, maxRuns: maxRuns)
        } catch {
            fail(error.message)
        }
        printError("edgy helper: serving edgy run on \(path) (\(pool) parked jails per shape, \(host.forkServer.map { "fork server \($0)" } ?? "cloned in process"))")
        // SIGTERM and SIGINT end the helper cleanly: the socket removed, parked jails killed.
        let signals = [SIGTERM, SIGINT].map { (number: Int32) -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                helper.stop()
                Glibc.exit(0)
            }
            source.resume()
            return source
        }
        let idleExit = self.idleExit
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                helper.serve(idleExitSeconds: idleExit)
                finished.resume()
            }
        }
        signals.forEach { $0.cancel() }
    }
}
