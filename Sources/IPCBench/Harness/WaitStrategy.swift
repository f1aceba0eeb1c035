/// How a worker waits: the consumer for its next message, the producer for a reply or for room in
/// the channel. An axis of its own (the CSV's `wait` column), orthogonal to mechanism, variant, size
/// and placement; each mechanism says which strategies it supports (`Mechanism.waitStrategies`).
public enum WaitStrategy: String, Codable, Sendable, CaseIterable {
    /// Blocking calls: the caller sleeps in the kernel until it can go on (the default).
    case block
    /// Non-blocking calls retried at once until they succeed: no sleep, no wake-up, a whole CPU.
    case poll
    /// What event-loop servers do: `epoll_wait` until the descriptor is ready, then a non-blocking call.
    case epoll
    /// Signal-driven I/O, the classic asynchronous notification: the descriptor raises SIGIO (O_ASYNC,
    /// owned by the waiting thread) when it becomes ready; the worker waits in `sigwaitinfo`.
    case sigio
    /// Non-blocking calls retried for a bounded time (`--spin-then-block`), then a blocking wait.
    case spinThenBlock = "spin-then-block"
    /// A blocking wait with a timeout (`poll(2)` with `--wait-timeout`): a peer that stops answering
    /// ends the cell with a timeout error instead of a wait until the cell timeout.
    case timed
    /// Completion-based I/O: each read or write is submitted to the worker's own io_uring and its
    /// completion awaited in the same `io_uring_enter` (one system call per operation, as `block`).
    case uring
    /// io_uring with a kernel thread polling the submission queue (IORING_SETUP_SQPOLL): operations are
    /// queued and completions reaped in shared memory, no system call per message while the worker
    /// polls; after `--spin-then-block` of polling it sleeps in `io_uring_enter`. The polling thread
    /// belongs to the worker's process, so its CPU time is in the row's CPU columns.
    case uringSQPoll = "uring-sqpoll"

    public static let defaultSpinNanoseconds: UInt64 = 50_000
    public static let defaultTimeoutSeconds = 5.0

    /// One line for `ipcbench list` and the README.
    public var summary: String {
        switch self {
        case .block: "blocking calls; the kernel wakes the waiter"
        case .poll: "non-blocking calls retried at once (O_NONBLOCK, EAGAIN); burns the CPU, never sleeps"
        case .epoll: "epoll_wait for readiness, then a non-blocking call"
        case .sigio: "signal-driven I/O: O_ASYNC raises SIGIO on readiness; the worker waits in sigwaitinfo"
        case .spinThenBlock: "non-blocking retries for --spin-then-block, then a blocking wait"
        case .timed: "a blocking wait bounded by --wait-timeout (poll(2) with a timeout)"
        case .uring: "io_uring: each read/write submitted and its completion awaited in one io_uring_enter"
        case .uringSQPoll: "io_uring with a kernel submission thread (SQPOLL); completions polled in user space, sleeping after --spin-then-block"
        }
    }

    /// The strategies that wait for readiness and then make the call themselves (all but io_uring's).
    public static let readinessBased = allCases.filter { !$0.usesCompletionRing }

    /// Strategies whose reads and writes the kernel performs through the worker's io_uring.
    public var usesCompletionRing: Bool { self == .uring || self == .uringSQPoll }

    /// Strategies whose descriptors are O_NONBLOCK: the readiness-based ones but `block`. (io_uring
    /// leaves descriptors blocking: on a non-blocking one an empty read completes with EAGAIN
    /// instead of waiting.)
    var usesNonBlockingCalls: Bool { self != .block && !usesCompletionRing }
}
