/// What a cell measures.
public enum Mode: String, Codable, Sendable, CaseIterable {
    /// Ping-pong: the producer sends, the consumer answers with a message of the same size.
    case latency
    /// Streaming: the producer sends as fast as the mechanism accepts; the consumer counts.
    case throughput
}

/// What the producer writes into each message; recorded in every row so zero-copy and copying paths
/// are compared doing the same work. Data that nobody writes does not move between caches: an
/// in-place ring whose producer writes only headers lets the consumer re-read lines it already holds.
public enum Produce: String, Codable, Sendable, CaseIterable {
    /// Every payload byte of every message, a per-message pattern (MessageFormat.writePattern): into
    /// a private buffer on copying paths, straight into shared memory on in-place ones.
    case write
    /// Only the 16-byte header: signalling alone, the payload never moves.
    case header
}

/// What the consumer does with each payload; recorded in every row so zero-copy and copying paths
/// are compared doing the same work.
public enum Touch: String, Codable, Sendable, CaseIterable {
    /// Only the header (sequence number and timestamp) is read.
    case none
    /// Every byte is read once, as a real consumer would.
    case read
    /// Every byte is checked against the message's pattern (needs `Produce.write`).
    case verify
}

/// One repetition's work order for one worker, passed on its command line as JSON.
public struct WorkerTask: Codable, Sendable {
    public var mechanismID: String
    public var role: Role
    public var options: EndpointOptions
    public var produce: Produce = .write
    public var touch: Touch
    /// CPU to pin to, or nil to leave placement to the OS.
    public var cpu: Int?
    public var warmupMessages: Int
    /// Upper bound on timed messages (round trips in latency mode).
    public var maximumMessages: Int
    /// Upper bound on the timed loop's length; 0 means "until maximumMessages".
    public var durationNanoseconds: UInt64
    public var rendezvous: Rendezvous
    /// What the consumer published for the producer (for example a port).
    public var published: [String: String]
    /// Test-only fault injection (never set from `--help`-visible options).
    public var fault: InjectedFault?
    /// Latency mode: 0 for closed-loop ping-pong, else the fixed interval between paced sends.
    public var sendIntervalNanoseconds: UInt64 = 0
    /// The mechanism's `carriesSendTimestamp`: without it the consumer records no one-way delay.
    public var carriesSendTimestamp = true
    /// The clock of the latency loops, the same in both workers (see LoopClock).
    public var clock = LoopClock.monotonic
    /// `--clients`: how many producers the one consumer serves (1: a pair), and this producer's
    /// number among them, which it writes into every header (MessageFormat.clientTag).
    public var clients = 1
    public var clientIndex = 0
    /// `--readers`: how many consumers receive every message the one producer sends (1: a pair).
    public var readers = 1
}

/// A deliberate fault in the producer's stream, so tests can prove each kind of error is detected.
public enum InjectedFault: String, Codable, Sendable, CaseIterable {
    /// Skips one sequence number (throughput mode).
    case drop
    /// Sends two messages in swapped order (throughput mode).
    case reorder
    /// Flips one payload byte of one message (detected with touch=verify).
    case corrupt
    /// The consumer exits (status 0, no result, no error report) a moment into its timed loop, as a
    /// worker that returns early would (latency mode only, so the throughput cells after it still run).
    case exitEarly = "exit-early"
    /// The consumer stops (SIGSTOP) a moment into its timed loop (latency mode): a peer that stops
    /// answering without going away, which only a timed wait or the cell timeout ends.
    case stall
    /// The consumer busy-waits after each message for a fifth of the time the channel took to bring
    /// it, so every figure comes out about 20% slower (both modes): a known regression for `compare`.
    case slow
}
