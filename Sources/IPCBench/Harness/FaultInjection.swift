/// Test-only (`--inject-fault drop|reorder|corrupt`): wraps a streaming producer's endpoint and spoils
/// its stream once, a little after the warm-up, so tests can prove each kind of error is detected.
/// The timed loop knows nothing of it; the messages it spoils were built by the loop as usual.
final class FaultInjectingEndpoint: MessageEndpoint {
    private let inner: any MessageEndpoint
    private let fault: InjectedFault
    /// The sequence number the fault falls on.
    private let target: UInt64
    private let message: UnsafeMutableRawBufferPointer
    private let held: UnsafeMutableRawBufferPointer
    private var holding = false

    /// Wraps `endpoint` when `task` asks for a fault in a producer's stream; nil otherwise.
    static func wrapping(_ endpoint: any MessageEndpoint, for task: WorkerTask) -> FaultInjectingEndpoint? {
        guard let fault = task.fault, [.drop, .reorder, .corrupt].contains(fault),
              task.role == .producer, task.options.mode == .throughput
        else { return nil }
        return FaultInjectingEndpoint(endpoint, fault: fault, task: task)
    }

    private init(_ inner: any MessageEndpoint, fault: InjectedFault, task: WorkerTask) {
        self.inner = inner
        self.fault = fault
        let warmup = UInt64(task.warmupMessages)
        let limit = warmup + UInt64(task.maximumMessages)
        target = Swift.min(warmup + 10, limit > 2 ? limit - 2 : 0)
        message = .allocate(byteCount: task.options.messageBytes, alignment: 64)
        held = .allocate(byteCount: task.options.messageBytes, alignment: 64)
    }

    deinit {
        message.deallocate()
        held.deallocate()
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let built = UnsafeMutableRawBufferPointer(rebasing: message[0..<size])
        fill(built)
        // The producer's own numbering, without its client number (--clients).
        let sequence = MessageFormat.sequence(of: UnsafeRawBufferPointer(built)) & ~MessageFormat.clientMask
        switch fault {
        case .drop where sequence == target:
            return
        case .reorder where sequence == target:
            UnsafeMutableRawBufferPointer(rebasing: held[0..<size]).copyMemory(from: UnsafeRawBufferPointer(built))
            holding = true
            return
        case .corrupt where sequence == target:
            built[size - 1] ^= 0xFF
        default:
            break
        }
        try forward(built)
        if holding {
            holding = false
            try forward(UnsafeMutableRawBufferPointer(rebasing: held[0..<size]))
        }
    }

    private func forward(_ bytes: UnsafeMutableRawBufferPointer) throws {
        try inner.send(size: bytes.count) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        try inner.receive(size: size, consume: consume)
    }

    func close() { inner.close() }
    var recoveredLosses: UInt64 { inner.recoveredLosses }
    func injectLoss() { inner.injectLoss() }
}

/// Test-only (`--inject-fault slow`): wraps the consumer's endpoint so that each message costs 20%
/// more than the channel makes it cost. After each receive it busy-waits (no sleep: a wake-up would
/// add its own delay) for a fifth of the channel's time for that message: the time since the
/// previous receive returned, less the wait it added then. In latency mode the answer goes after
/// the wait, so the round trip grows by it; in throughput mode the consumer drains 1/1.2 as fast.
/// Only where a message takes far longer than the wrapper itself: its unspecialised call and two
/// clock reads cost tens of nanoseconds, so the spinning ring's 16 B streaming ran at 0.12 times its
/// speed (results/vm-xeon-2026-12-05/compare/slowed.csv).
final class SlowedEndpoint: MessageEndpoint {
    private let inner: any MessageEndpoint
    private var previousReturn: UInt64 = 0
    private var previousWait: UInt64 = 0

    static func wrapping(_ endpoint: any MessageEndpoint, for task: WorkerTask) -> SlowedEndpoint? {
        task.fault == .slow && task.role == .consumer ? SlowedEndpoint(endpoint) : nil
    }

    private init(_ inner: any MessageEndpoint) { self.inner = inner }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        try inner.send(size: size, fill: fill)
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard try inner.receive(size: size, consume: consume) else { return false }
        let now = MonotonicClock.now()
        let wait = previousReturn == 0 ? 0 : (now &- previousReturn &- previousWait) / 5
        while MonotonicClock.now() &- now < wait {}
        previousReturn = now
        previousWait = wait
        return true
    }

    func close() { inner.close() }
    var recoveredLosses: UInt64 { inner.recoveredLosses }
    func injectLoss() { inner.injectLoss() }
}
