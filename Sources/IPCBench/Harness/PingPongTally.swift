/// The producer's bookkeeping in ping-pong (Loops.latencyProducer): round trips, split into the
/// first and second half of the timed loop for the drift check, wrong replies, CPU cost.
struct PingPongProducerTally {
    private var roundTrips: IntervalRecorder
    private var inSecondHalf = false
    /// The second half starts with this message, or at `halfwayTick`, whichever comes first.
    private let halfwaySequence: UInt64
    private var halfwayTick = UInt64.max
    private let halfDuration: UInt64
    /// Replies that did not carry the sequence number of the message they answer.
    var wrongReplies: UInt64 = 0
    private var meter = CPUMeter()
    private let cpuBefore = Affinity.currentCPU()
    private var loopStartNanoseconds: UInt64 = 0

    init<Clock: TimedLoopClock>(_ task: WorkerTask, clock: Clock) {
        roundTrips = IntervalRecorder(nanosecondsPerTick: clock.nanosecondsPerTick)
        halfwaySequence = UInt64(task.warmupMessages) + UInt64(task.maximumMessages) / 2
        halfDuration = task.durationNanoseconds > 0 ? clock.ticks(nanoseconds: task.durationNanoseconds / 2) : .max
    }

    /// Called once, when the warm-up is over: the loop clock's and CLOCK_MONOTONIC's readings then.
    mutating func startTiming(at loopStart: UInt64, monotonic: UInt64) {
        meter.start()
        loopStartNanoseconds = monotonic
        if halfDuration != .max { halfwayTick = loopStart &+ halfDuration }
    }

    /// Records the round trip of message `sequence`, sent at `start` and answered by `end` (ticks).
    @inline(__always)
    mutating func recordRoundTrip(of sequence: UInt64, from start: UInt64, to end: UInt64) {
        if !inSecondHalf, sequence >= halfwaySequence || start >= halfwayTick {
            inSecondHalf = true
            roundTrips.startSecondHalf()
        }
        roundTrips.record(from: start, to: end)
    }

    /// The result after `timedMessages` timed round trips, the loop having ended at `loopEnd`.
    mutating func result(timedMessages: UInt64, messageBytes: Int, loopEnd: UInt64) -> WorkerResult {
        let halves = roundTrips.finishByHalf()
        var whole = halves[0]
        whole.merge(halves[1])
        var result = WorkerResult(
            role: .producer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: timedMessages,
            messagesSentByProducer: timedMessages, payloadBytes: timedMessages * UInt64(messageBytes), lost: 0,
            reordered: wrongReplies, corrupt: 0, roundTrip: whole, loopStartNanoseconds: loopStartNanoseconds,
            loopEndNanoseconds: loopEnd, readChecksum: 0)
        result.roundTripHalves = halves
        result.cpuUsage = meter.finish()
        return result
    }
}

/// The consumer's bookkeeping in ping-pong (Loops.latencyConsumer): touch policy, sequence check,
/// one-way delays, CPU cost.
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

    init<Clock: TimedLoopClock>(_ task: WorkerTask, clock: Clock) {
        inspector = PayloadInspector(touch: task.touch)
        oneWay = IntervalRecorder(nanosecondsPerTick: clock.nanosecondsPerTick)
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
