/// The cell's wait strategy for a channel that is not a file descriptor (a semaphore): it can only
/// be tried without blocking (sem_trywait, IPC_NOWAIT) or waited on, with or without a timeout.
/// `epoll` and `sigio` need a descriptor; mechanisms say so in `waitUnavailableReason`.
struct TryWaiter {
    let strategy: WaitStrategy
    private let spinNanoseconds: UInt64
    private let timeoutSeconds: Double

    init(options: EndpointOptions) {
        strategy = options.wait
        spinNanoseconds = options.spinThenBlockNanoseconds
        timeoutSeconds = options.waitTimeoutSeconds
    }

    var timeoutNanoseconds: UInt64 { UInt64(timeoutSeconds * 1e9) }

    /// Waits in the strategy's way. `attempt(block, timeoutNanoseconds)` tries once, blocking (for at
    /// most the timeout, when it is not nil) or not, and returns true once it succeeded, false when it
    /// found nothing in time or was interrupted (the caller then tries again, a `timed` wait with the
    /// time it has left), and throws on any other failure.
    @inline(__always)
    func wait(for what: String, _ attempt: (_ block: Bool, _ timeoutNanoseconds: UInt64?) throws -> Bool) throws {
        switch strategy {
        case .block:
            while try !attempt(true, nil) {}
        case .poll:
            while try !attempt(false, nil) {}
        case .spinThenBlock:
            if try attempt(false, nil) { return }
            let start = MonotonicClock.now()
            while MonotonicClock.now() &- start < spinNanoseconds {
                if try attempt(false, nil) { return }
            }
            while try !attempt(true, nil) {}
        case .timed:
            // One clock read per wait; more only after an attempt came back empty.
            let deadline = MonotonicClock.now() + timeoutNanoseconds
            if try attempt(true, timeoutNanoseconds) { return }
            while true {
                let now = MonotonicClock.now()
                guard now < deadline else {
                    throw IPCError.timeout("no \(what) within \(timeoutSeconds) s (--wait timed, --wait-timeout)")
                }
                if try attempt(true, deadline - now) { return }
            }
        case .epoll, .sigio, .uring, .uringSQPoll:
            throw IPCError.setup("--wait \(strategy.rawValue) needs a file descriptor to wait on")
        }
    }
}
