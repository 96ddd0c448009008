import Glibc
import Synchronization

/// Runs `body` on an OS thread of its own and returns its result. Jail supervision blocks (clone,
/// poll, waitid), so it stays off Swift's cooperative pool. A thread runs one body at a time and
/// ends only between bodies, after its jail has been reaped: so it is the right owner for
/// PR_SET_PDEATHSIG, which kills a jail when the thread that cloned it dies.
func onBackgroundThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        SupervisionThreads.shared.run { continuation.resume(returning: body()) }
    }
}

/// Threads kept between attempts: starting one costs about 55 µs on an attempt's critical path,
/// waking a parked one a futex wake. At most `maxIdle` wait; a thread finishing a body when that
/// many already wait ends instead.
final class SupervisionThreads: Sendable {
    static let shared = SupervisionThreads(maxIdle: 16)

    let maxIdle: Int
    private let idle = Mutex<[SupervisionThread]>([])

    init(maxIdle: Int) {
        self.maxIdle = maxIdle
    }

    /// How many threads wait for a body.
    var idleCount: Int { idle.withLock { $0.count } }

    func run(_ body: @escaping @Sendable () -> Void) {
        // The most recently parked thread: its stack is the likeliest to be in cache.
        if let thread = idle.withLock({ $0.popLast() }) {
            thread.hand(body)
            return
        }
        let thread = SupervisionThread(pool: self, first: body)
        let box = Unmanaged.passRetained(thread)
        var id: pthread_t = 0
        let rc = pthread_create(&id, nil, { raw in
            Unmanaged<SupervisionThread>.fromOpaque(raw!).takeRetainedValue().loop()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(id)
    }

    /// Whether `thread` may wait for another body.
    fileprivate func park(_ thread: SupervisionThread) -> Bool {
        idle.withLock { idle in
            guard idle.count < maxIdle else { return false }
            idle.append(thread)
            return true
        }
    }
}

/// One kept thread: its next body, and the semaphore it waits on for it.
///
/// `body` is written by the one caller that took the thread off the idle list, before
/// `sem_post`, and read by the thread after `sem_wait`: the semaphore orders the two, hence
/// `@unchecked Sendable`.
private final class SupervisionThread: @unchecked Sendable {
    private let pool: SupervisionThreads
    private var body: (@Sendable () -> Void)?
    private let ready: UnsafeMutablePointer<sem_t>

    init(pool: SupervisionThreads, first: @escaping @Sendable () -> Void) {
        self.pool = pool
        body = first
        ready = .allocate(capacity: 1)
        sem_init(ready, 0, 0)
    }

    deinit {
        sem_destroy(ready)
        ready.deallocate()
    }

    func hand(_ next: @escaping @Sendable () -> Void) {
        body = next
        sem_post(ready)
    }

    func loop() {
        while true {
            runBody()
            guard pool.park(self) else { return }
            while sem_wait(ready) != 0 && errno == EINTR {}
        }
    }

    /// Runs the body and lets go of it before the thread parks: what it captured (a supervisor,
    /// with its pool and sockets) must not live on in an idle thread.
    private func runBody() {
        let run = body
        body = nil
        run?()
    }
}
