/// The producer's bookkeeping in ping-pong (round trips, wrong replies, CPU cost), shared by the
/// generic loop (Loops.latencyProducer) and the spinning ring's own (SpinPingPong).
struct PingPongProducerTally {
    var roundTrips: IntervalRecorder
    /// Replies that did not carry the sequence number of the message they answer.
    var wrongReplies: UInt64 = 0
    private var meter = CPUMeter()
    private let cpuBefore = Affinity.currentCPU()
    private var loopStartNanoseconds: UInt64 = 0

    init(_ task: WorkerTask) {
        roundTrips = IntervalRecorder(clock: task.clock)
    }

    /// Called once, when the warm-up is over.
    mutating func startTiming() {
        meter.start()
        loopStartNanoseconds = MonotonicClock.now()
    }

    /// The result after `timedMessages` timed round trips, the loop having ended at `loopEnd`.
    mutating func result(timedMessages: UInt64, messageBytes: Int, loopEnd: UInt64) -> WorkerResult {
        var result = WorkerResult(
            role: .producer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: timedMessages,
            messagesSentByProducer: timedMessages, payloadBytes: timedMessages * UInt64(messageBytes), lost: 0,
            reordered: wrongReplies, corrupt: 0, roundTrip: roundTrips.finish(), loopStartNanoseconds: loopStartNanoseconds,
            loopEndNanoseconds: loopEnd, readChecksum: 0)
        result.cpuUsage = meter.finish()
        return result
    }
}

/// The consumer's bookkeeping in ping-pong (touch policy, sequence check, one-way delays, CPU
/// cost), shared by the generic loop (Loops.latencyConsumer) and the spinning ring's own.
struct PingPongConsumerTally {
    var inspector: PayloadInspector
    private var oneWay: IntervalRecorder
    private var check = SequenceCheck()
    private var timed: UInt64 = 0
    private var meter = CPUMeter()
    private let cpuBefore = Affinity.currentCPU()
    private let warmup: UInt64
    /// A mechanism whose messages cannot carry the send time leaves the one-way columns empty.
    private let recordsOneWay: Bool

    init(_ task: WorkerTask) {
        inspector = PayloadInspector(touch: task.touch)
        oneWay = IntervalRecorder(clock: task.clock)
        warmup = UInt64(task.warmupMessages)
        recordsOneWay = task.carriesSendTimestamp
    }

    /// Counts a message once it has been answered: its sequence number and, past the warm-up, its
    /// one-way delay (the CPU meter starts with the first timed message).
    @inline(__always)
    mutating func count(sequence: UInt64, sentAt: UInt64, arrivedAt: UInt64) {
        check.observe(sequence)
        if sequence >= warmup {
            if timed == 0 { meter.start() }
            if recordsOneWay { oneWay.record(from: sentAt, to: arrivedAt) }
            timed &+= 1
        }
    }

    /// The producer's end marker: its count of timed messages shows any never seen as lost.
    mutating func finish(endMarker sequence: UInt64) {
        check.finish(sentCount: warmup + (sequence & ~MessageFormat.endMarker))
    }

    mutating func result(messageBytes: Int) -> WorkerResult {
        var result = WorkerResult(
            role: .consumer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: timed,
            messagesSentByProducer: check.expected > warmup ? check.expected - warmup : 0,
            payloadBytes: timed * UInt64(messageBytes), lost: check.lost, reordered: check.reordered,
            corrupt: inspector.corrupt, oneWay: oneWay.finish(), loopStartNanoseconds: 0, loopEndNanoseconds: 0,
            readChecksum: inspector.checksum)
        result.cpuUsage = meter.finish()
        return result
    }
}
