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
        }
    }

    /// Strategies whose descriptors are O_NONBLOCK (every one but `block`).
    var usesNonBlockingCalls: Bool { self != .block }
}
