import Glibc
import NIOCore
import NIOPosix

/// Swift's global executor on `NIOSingletons`' event loops: every job Swift would give its own
/// pool is queued on the current loop (or the next one) and run there, on the loop's thread.
///
/// SwiftNIO offers the same (`unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`),
/// but it runs each job as if the loop were the job's serial executor. Code that is not isolated
/// to anything asks for the generic executor, so every time such code resumes or returns across an
/// `await`, the runtime (`swift_task_switch`) sees a different executor and queues the task again,
/// behind whatever else waits on the loop. A `?wait` request did that a dozen times between its
/// task's end and its answer, and the worker's next claim ran in between. Here each job runs as the
/// default executor runs it, on the generic executor, so those resumptions continue on the spot.
///
/// Jobs of actors whose executor is an event loop do not come here: they go to the loop's own
/// `SerialExecutor` conformance, which is unchanged.
enum EventLoopGlobalExecutor {
    /// `swift_task_enqueueGlobal_hook`: the job, and the runtime's own enqueue (not called).
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// Installs the hook; false when this runtime has none (Swift's own pool then serves). Call
    /// once, on the main thread, before the first task starts.
    static func install() -> Bool {
        guard let hook = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook") else { return false }
        let enqueue: EnqueueGlobalHook = { job, _ in
            // `any()` is the calling thread's loop when it is one of the group's.
            MultiThreadedEventLoopGroup.singleton.any().execute { runOnGenericExecutor(job) }
        }
        hook.assumingMemoryBound(to: EnqueueGlobalHook?.self).pointee = enqueue
        return true
    }
}

/// The runtime's entry point for running a job on a given executor; the all-zero executor is the
/// generic one, which is what the default global executor passes.
@_silgen_name("swift_job_run")
private func swiftJobRun(_ job: UnownedJob, _ executor: UnownedSerialExecutor)

private func runOnGenericExecutor(_ job: UnownedJob) {
    swiftJobRun(job, unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self))
}
