import Glibc

/// Runs `body` on a new OS thread and returns its result. Jail supervision blocks (clone, poll,
/// waitid), so it stays off Swift's cooperative pool. The thread lives exactly as
/// long as its jail, which also makes it the right owner for PR_SET_PDEATHSIG: if it dies, the
/// jail dies with it, and it only ends after the jail has been reaped.
func onBackgroundThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        let box = Unmanaged.passRetained(ThreadBody { continuation.resume(returning: body()) })
        var thread: pthread_t = 0
        let rc = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
