import Glibc

/// The harness's one timed loop, for every mechanism: mechanisms supply only the hand-off
/// primitives (MessageEndpoint.send/receive); the loop owns every clock read, the warm-up boundary,
/// what the producer writes (produce policy), what the consumer reads (touch policy), the sequence
/// check and the recording. It is generic over the endpoint type, so each mechanism's calls are
/// direct, and over the clock, so its arithmetic can be tested against a scripted one. It allocates
/// nothing, takes no locks and calls no Foundation code.
enum Loops {
    /// The loop for the task's mode and role.
    static func run<Endpoint: MessageEndpoint, Clock: TimedLoopClock>(
        _ endpoint: Endpoint, _ task: WorkerTask, clock: Clock
    ) throws -> WorkerResult {
        var result: WorkerResult
        switch (task.options.mode, task.role) {
        case (.latency, .producer): result = try latencyProducer(endpoint, task, clock)
        case (.latency, .consumer): result = try latencyConsumer(endpoint, task, clock)
        case (.throughput, .producer): result = try throughputProducer(endpoint, task, clock)
        case (.throughput, .consumer): result = try throughputConsumer(endpoint, task, clock)
        }
        result.lost &+= endpoint.recoveredLosses
        return result
    }

    /// Producer side of ping-pong. Closed loop (the default): one clock read per message, just
    /// before its send, which also ends the previous message's round trip (so a round trip runs from
    /// one send to the next and includes the reply check, a few ns). A read after each reply costs
    /// more than it seems: the read that follows a spin-wait stalls until the wait's load settles.
    /// Each round trip is recorded while the next message is in flight, off the measured path.
    ///
    /// Paced (open-loop) tasks send on a fixed schedule and measure from each message's intended
    /// send time to its reply, so a slow reply delays later messages' figures too instead of
    /// silently thinning the samples (no coordinated omission).
    static func latencyProducer<Endpoint: MessageEndpoint, Clock: TimedLoopClock>(
        _ endpoint: Endpoint, _ task: WorkerTask, _ clock: Clock
    ) throws -> WorkerResult {
        let size = task.options.messageBytes
        let writesPayload = task.produce == .write && size > MessageFormat.headerBytes
        let warmup = UInt64(task.warmupMessages)
        let limit = warmup + UInt64(task.maximumMessages)
        var tally = PingPongProducerTally(task, clock: clock)
        let interval = clock.ticks(nanoseconds: task.sendIntervalNanoseconds)
        let paced = interval > 0
        let tag = MessageFormat.clientTag(task.clientIndex)
        var sequence: UInt64 = 0
        var loopStart: UInt64 = 0
        var deadline = UInt64.max
        var previousSentAt: UInt64 = 0

        while true {
            if sequence == warmup {
                loopStart = clock.now()
                tally.startTiming(at: loopStart, monotonic: clock.monotonicNow())
                if task.durationNanoseconds > 0 { deadline = loopStart &+ clock.ticks(nanoseconds: task.durationNanoseconds) }
            }
            let timed = sequence >= warmup
            let sentAt = paced && timed ? loopStart &+ (sequence - warmup) &* interval : clock.now()
            // Closed loop: this read ends the previous message's round trip.
            let finishesRoundTrip = !paced && sequence > warmup
            if sequence == limit || sentAt >= deadline {
                if finishesRoundTrip { tally.recordRoundTrip(of: sequence - 1, from: previousSentAt, to: sentAt) }
                break
            }
            if paced && timed { clock.wait(until: sentAt) }
            try endpoint.send(size: size) { message in
                MessageFormat.stamp(message, sequence: sequence | tag, sentAt: sentAt)
                if writesPayload { MessageFormat.writePattern(message, sequence: sequence | tag) }
            }
            if finishesRoundTrip { tally.recordRoundTrip(of: sequence - 1, from: previousSentAt, to: sentAt) }
            var reply: UInt64 = 0
            let answered = try endpoint.receive(size: size) { message in
                reply = MessageFormat.sequence(of: message)
            }
            let returnedAt = paced ? clock.now() : 0
            guard answered else { throw IPCError.peerClosed("consumer closed the channel before answering message \(sequence)") }
            if reply != sequence | tag | MessageFormat.replyFlag { tally.wrongReplies &+= 1 }
            previousSentAt = sentAt
            sequence &+= 1
            if paced && timed {
                tally.recordRoundTrip(of: sequence - 1, from: sentAt, to: returnedAt)
                // A schedule the channel cannot keep falls behind the clock: stop on the clock.
                if returnedAt >= deadline { break }
            }
        }
        let loopEnd = clock.monotonicNow()
        let timed = sequence > warmup ? sequence - warmup : 0
        try sendEndMarker(endpoint, size: size, timedMessages: timed, tag: tag)
        return tally.result(timedMessages: timed, messageBytes: size, loopEnd: loopEnd)
    }

    /// Consumer side of ping-pong: checks and touches each message, reads its arrival time once it
    /// is in hand (see MessageEndpoint.receiveAndAnswer), and answers with a message of the same size
    /// whose header it writes (the sequence seen, flagged as a reply). The bookkeeping comes after
    /// the answer, so it does not lengthen the round trip.
    static func latencyConsumer<Endpoint: MessageEndpoint, Clock: TimedLoopClock>(
        _ endpoint: Endpoint, _ task: WorkerTask, _ clock: Clock
    ) throws -> WorkerResult {
        let size = task.options.messageBytes
        var tally = PingPongConsumerTally(task, clock: clock)

        while true {
            var sequence: UInt64 = 0
            var sentAt: UInt64 = 0
            var arrivedAt: UInt64 = 0
            let received = try endpoint.receiveAndAnswer(size: size) { message in
                sequence = MessageFormat.sequence(of: message)
                sentAt = MessageFormat.sentAt(of: message)
                if sequence & MessageFormat.endMarker != 0 { return false }
                tally.inspector.inspect(message, sequence: sequence)
                return true
            } answer: { reply in
                // The reply echoes the request's send time rather than carrying the arrival time: a reply
                // that waited for the clock read would lengthen the round trip it is part of.
                MessageFormat.stampReply(reply, answering: sequence, sentAt: sentAt)
            } arrived: {
                arrivedAt = clock.now()
            }
            guard received else { throw IPCError.peerClosed("producer closed the channel before its end marker") }
            if sequence & MessageFormat.endMarker != 0 {
                tally.finish(endMarker: sequence)
                break
            }
            tally.count(sequence: sequence, sentAt: sentAt, arrivedAt: arrivedAt)
        }
        return tally.result(messageBytes: size)
    }

    /// How many messages the streaming producer sends between two reads of the clock for its
    /// deadline: up to 64, but no more than 256 KiB, so a run overshoots `--duration` by little
    /// whatever the message size.
    static func deadlineCheckInterval(messageBytes: Int) -> UInt64 {
        let fitting = max(1, (256 << 10) / max(messageBytes, 1))
        return UInt64(1) << (Int.bitWidth - 1 - min(64, fitting).leadingZeroBitCount)
    }

    /// Producer side of streaming: sends as fast as the endpoint accepts, then the end marker.
    static func throughputProducer<Endpoint: MessageEndpoint, Clock: TimedLoopClock>(
        _ endpoint: Endpoint, _ task: WorkerTask, _ clock: Clock
    ) throws -> WorkerResult {
        let size = task.options.messageBytes
        let writesPayload = task.produce == .write && size > MessageFormat.headerBytes
        let warmup = UInt64(task.warmupMessages)
        let limit = warmup + UInt64(task.maximumMessages)
        let checkMask = deadlineCheckInterval(messageBytes: size) - 1
        let tag = MessageFormat.clientTag(task.clientIndex)
        var sequence: UInt64 = 0
        var loopStart: UInt64 = 0
        var deadline = UInt64.max
        var meter = CPUMeter()
        let cpuBefore = Affinity.currentCPU()

        while sequence < limit {
            if sequence == warmup {
                meter.start()
                loopStart = clock.monotonicNow()
                if task.durationNanoseconds > 0 { deadline = loopStart + task.durationNanoseconds }
            }
            try endpoint.send(size: size) { message in
                MessageFormat.stamp(message, sequence: sequence | tag, sentAt: loopStart)
                if writesPayload { MessageFormat.writePattern(message, sequence: sequence | tag) }
            }
            sequence &+= 1
            if sequence & checkMask == 0, sequence > warmup, clock.monotonicNow() >= deadline { break }
        }
        let loopEnd = clock.monotonicNow()
        let timed = sequence > warmup ? sequence - warmup : 0
        try sendEndMarker(endpoint, size: size, timedMessages: timed, tag: tag)
        var result = WorkerResult(
            role: .producer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: timed,
            messagesSentByProducer: timed, payloadBytes: timed * UInt64(size), lost: 0, reordered: 0, corrupt: 0,
            loopStartNanoseconds: loopStart, loopEndNanoseconds: loopEnd, readChecksum: 0)
        result.cpuUsage = meter.finish()
        return result
    }

    /// Consumer side of streaming: checks every sequence number and touches every payload; its clock
    /// stops when the end marker arrives, i.e. after the last byte of the last timed message.
    static func throughputConsumer<Endpoint: MessageEndpoint, Clock: TimedLoopClock>(
        _ endpoint: Endpoint, _ task: WorkerTask, _ clock: Clock
    ) throws -> WorkerResult {
        let size = task.options.messageBytes
        let warmup = UInt64(task.warmupMessages)
        var inspector = PayloadInspector(touch: task.touch)
        var check = SequenceCheck()
        var timed: UInt64 = 0
        var sentByProducer: UInt64 = 0
        var firstReceive: UInt64 = 0
        var meter = CPUMeter()
        let cpuBefore = Affinity.currentCPU()

        while true {
            var sequence: UInt64 = 0
            let received = try endpoint.receive(size: size) { message in
                sequence = MessageFormat.sequence(of: message)
                if sequence & MessageFormat.endMarker == 0 { inspector.inspect(message, sequence: sequence) }
            }
            guard received else { throw IPCError.peerClosed("producer closed the channel before its end marker") }
            if sequence & MessageFormat.endMarker != 0 {
                sentByProducer = sequence & ~MessageFormat.endMarker
                break
            }
            check.observe(sequence)
            if sequence >= warmup {
                if timed == 0 {
                    meter.start()
                    firstReceive = clock.monotonicNow()
                }
                timed &+= 1
            }
        }
        let lastReceive = clock.monotonicNow()
        check.finish(sentCount: warmup + sentByProducer)
        var result = WorkerResult(
            role: .consumer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: timed,
            messagesSentByProducer: sentByProducer, payloadBytes: timed * UInt64(size), lost: check.lost,
            reordered: check.reordered, corrupt: inspector.corrupt, lastReceiveNanoseconds: lastReceive,
            loopStartNanoseconds: 0, loopEndNanoseconds: 0, readChecksum: inspector.checksum)
        if timed > 0 { result.firstReceiveNanoseconds = firstReceive }
        result.cpuUsage = meter.finish()
        return result
    }

    /// The end marker: header only, its sequence field carrying the number of timed messages sent
    /// (and the client number under `--clients`).
    private static func sendEndMarker<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, size: Int, timedMessages: UInt64, tag: UInt64) throws {
        try endpoint.send(size: size) { message in
            MessageFormat.stamp(message, sequence: MessageFormat.endMarker | tag | timedMessages, sentAt: 0)
        }
    }
}

/// Waits for a paced send time: sleeps while it is far off, then spins for the last stretch so sends
/// leave on time (the spinning shows in the producer's CPU cost).
enum Pacer {
    static let spinNanoseconds: UInt64 = 50_000

    @inline(__always)
    static func wait(until time: UInt64) {
        var now = MonotonicClock.now()
        if now + spinNanoseconds < time {
            let wake = time - spinNanoseconds
            var request = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &request, nil) == EINTR {}
            now = MonotonicClock.now()
        }
        while now < time { now = MonotonicClock.now() }
    }
}

/// Applies the touch policy to each received payload.
struct PayloadInspector {
    let touch: Touch
    private(set) var checksum: UInt64 = 0
    private(set) var corrupt: UInt64 = 0

    init(touch: Touch) {
        self.touch = touch
    }

    @inline(__always)
    mutating func inspect(_ message: UnsafeRawBufferPointer, sequence: UInt64) {
        switch touch {
        case .none:
            break
        case .read:
            checksum &+= MessageFormat.readAll(message)
        case .verify:
            if !MessageFormat.patternMatches(message, sequence: sequence) { corrupt &+= 1 }
        }
    }
}
