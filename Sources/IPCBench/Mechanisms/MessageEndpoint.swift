/// One side's open endpoint: the hand-off primitives the harness's one timed loop (Loops) calls.
///
/// Messages are handed over through closures so that copying and in-place (zero-copy) mechanisms
/// share that loop: a copying endpoint lets `fill` write its private buffer and then copies it into
/// the kernel; an in-place endpoint lets `fill` write straight into shared memory. The harness decides
/// what `fill` writes (produce policy), what `consume` reads (touch policy), and reads every clock.
/// In latency mode the loops alternate strictly: the producer sends one message and receives one
/// reply; the consumer receives one message and sends one reply.
public protocol MessageEndpoint: AnyObject {
    /// Sends one message of `size` bytes whose content `fill` writes.
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws
    /// Receives one message of `size` bytes and shows it to `consume` where it lies.
    /// Returns false when the peer closed the channel cleanly before a new message began.
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool
    /// Consumer side of ping-pong: receives one message and shows it to `consume` where it lies;
    /// when `consume` returns true, answers it with a message of the same size whose content `answer`
    /// writes. Calls `arrived` once the message is in hand: before the answer when answering is a
    /// system call (the default: `receive`, `arrived`, `send`), after it when the answer is a store
    /// into memory the producer polls, which a clock read first would only hold back. Returns false
    /// when the peer closed the channel cleanly before a new message began.
    func receiveAndAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool
    /// Releases the endpoint; called once after the loops.
    func close()
    /// Messages lost and then recovered by the mechanism itself (UDP's retransmissions): the
    /// harness's sequence check cannot see them, so the harness adds them to the lost count.
    var recoveredLosses: UInt64 { get }
    /// Test-only (`--inject-fault drop` on a mechanism that may lose messages): lose some on purpose.
    func injectLoss()
    /// Runs the harness's timed loop (Loops.run) over this endpoint. Not for mechanisms to implement:
    /// it is a requirement only so that the one loop is specialised for each concrete endpoint type,
    /// making its calls to send and receive direct. (A test checks that no mechanism defines it.)
    func runHarnessLoop(_ task: WorkerTask) throws -> WorkerResult
}

extension MessageEndpoint {
    public func receiveAndAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool {
        try receiveThenAnswer(size: size, consume: consume, answer: answer, arrived: arrived)
    }

    /// The default answer: `receive`, `arrived`, then `send` when `consume` asks for an answer.
    @inline(__always)
    public func receiveThenAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool {
        var answers = false
        guard try receive(size: size, consume: { answers = consume($0) }) else { return false }
        arrived()
        if answers { try send(size: size, fill: answer) }
        return true
    }

    public var recoveredLosses: UInt64 { 0 }
    public func injectLoss() {}

    public func runHarnessLoop(_ task: WorkerTask) throws -> WorkerResult {
        try Loops.run(self, task, clock: task.clock)
    }
}

/// The consumer's half-open endpoint: bound or listening, so the producer can be started and told
/// where to connect (`published`), and completed by `accept()` once the producer exists.
public protocol ConsumerListener {
    /// Parameters the producer needs in addition to the rendezvous (for example a port number).
    var published: [String: String] { get }
    func accept() throws -> any MessageEndpoint
}

/// A listener that is complete as soon as it exists (inherited fds, or opens that do not block).
public struct ImmediateListener: ConsumerListener {
    public var published: [String: String] = [:]
    let open: () throws -> any MessageEndpoint

    public init(published: [String: String] = [:], open: @escaping () throws -> any MessageEndpoint) {
        self.published = published
        self.open = open
    }

    public func accept() throws -> any MessageEndpoint { try open() }
}
