/// What a worker reports when its loop is done.
public struct WorkerResult: Codable, Sendable {
    public var role: Role
    /// CPU observed (sched_getcpu) right before and right after the timed loop.
    public var cpuBefore: Int
    public var cpuAfter: Int
    /// Timed messages handled by this side (round trips for the latency producer).
    public var messages: UInt64
    /// Timed messages the producer says it sent (from the end marker), as seen by the consumer.
    public var messagesSentByProducer: UInt64
    public var payloadBytes: UInt64
    public var lost: UInt64
    public var reordered: UInt64
    public var corrupt: UInt64
    /// Producer, latency mode: round-trip times.
    public var roundTrip: LatencyHistogram?
    /// Producer, latency mode: the round trips of the first and of the second half of the timed loop
    /// (split at half the message limit or half the duration, whichever comes first), for the drift check.
    public var roundTripHalves: [LatencyHistogram]?
    /// Consumer, latency mode: one-way delays from the embedded send timestamp.
    public var oneWay: LatencyHistogram?
    /// Consumer, throughput mode: CLOCK_MONOTONIC after the last timed message was received.
    public var lastReceiveNanoseconds: UInt64?
    /// Consumer, throughput mode: arrival of the first timed message (the start of the interval when
    /// the producer's clock is on another host).
    public var firstReceiveNanoseconds: UInt64?
    /// Producer: start and end of its timed loop (CLOCK_MONOTONIC ns).
    public var loopStartNanoseconds: UInt64
    public var loopEndNanoseconds: UInt64
    /// A value derived from every byte read under touch=read, reported so the reads cannot be optimised away.
    public var readChecksum: UInt64
    /// CPU time and context switches of this worker during its timed loop.
    public var cpuUsage = CPUUsage()
    /// `--memory-node`: pages of the shared memory this worker found on the node before its loop.
    public var boundMemoryPages: Int?
    /// Server under `--clients`: timed messages from each client, and the number each client's end
    /// marker said it sent, in client order.
    public var messagesPerClient: [UInt64]?
    public var sentByClient: [UInt64]?
}
