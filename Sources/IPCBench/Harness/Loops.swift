import Glibc

/// The timed loops. They are generic over the endpoint type so each mechanism's calls are direct
/// (specialised), and they allocate nothing, take no locks and call no Foundation code.
enum Loops {
    /// The generic loop for the task's mode and role.
    static func run<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, _ task: WorkerTask) throws -> WorkerResult {
        switch (task.options.mode, task.role) {
        case (.latency, .producer): try latencyProducer(endpoint, task)
        case (.latency, .consumer): try latencyConsumer(endpoint, task)
        case (.throughput, .producer): try throughputProducer(endpoint, task)
        case (.throughput, .consumer): try throughputConsumer(endpoint, task)
        }
    }

    /// Producer side of ping-pong. Closed loop (the default): one clock read per message, just
    /// before its send, which also ends the previous message's round trip (so a round trip runs from
    /// one send to the next and includes the reply check, a few ns). A second read after each reply
    /// looked free but is not: here the clock read that follows a spin-wait stalls until the wait's
    /// load settles: in a C replica of the spinning ring's ping-pong, three reads per round trip
    /// made the round trip ≈1.5× a bare cache-line ping-pong, against ≈1.0× with one. Each round
    /// trip is recorded while the next message is in flight, off the measured path.
    ///
    /// Paced (open-loop) tasks send on a fixed schedule and measure from each message's intended
    /// send time to its reply, so a slow reply delays later messages' figures too instead of
    /// silently thinning the samples (no coordinated omission).
    ///
    /// Both latency loops alternate strictly (send one, then receive one): the shared-memory ring's
    /// latency mode relies on it (one slot carries request and reply; see RingChannel.receive).
    static func latencyProducer<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, _ task: WorkerTask) throws -> WorkerResult {
        let size = task.options.messageBytes
        let verify = task.touch == .verify
        let warmup = UInt64(task.warmupMessages)
        let limit = warmup + UInt64(task.maximumMessages)
        let clock = task.clock
        var tally = PingPongProducerTally(task)
        var sequence: UInt64 = 0
        var loopStart: UInt64 = 0
        var deadline = UInt64.max
        let interval = clock.ticks(nanoseconds: task.sendIntervalNanoseconds)
        let paced = interval > 0
        // Pacer sleeps until CLOCK_MONOTONIC times, so paced send times must be in that clock.
        precondition(!paced || !clock.usesTimeStampCounter, "paced sends need the monotonic loop clock")
        var previousSentAt: UInt64 = 0

        while true {
            if sequence == warmup {
                tally.startTiming()
                loopStart = clock.now()
                if task.durationNanoseconds > 0 { deadline = loopStart + clock.ticks(nanoseconds: task.durationNanoseconds) }
            }
            let timed = sequence >= warmup
            let sentAt = paced && timed ? loopStart &+ (sequence - warmup) &* interval : clock.now()
            // Closed loop: this read ends the previous message's round trip.
            let finishesRoundTrip = !paced && sequence > warmup
            if sequence == limit || sentAt >= deadline {
                if finishesRoundTrip { tally.roundTrips.record(from: previousSentAt, to: sentAt) }
                break
            }
            if paced && timed { Pacer.wait(until: sentAt) }
            try endpoint.send(size: size) { message in
                MessageFormat.stamp(message, sequence: sequence, sentAt: sentAt)
                if verify { MessageFormat.writePattern(message, sequence: sequence) }
            }
            if finishesRoundTrip { tally.roundTrips.record(from: previousSentAt, to: sentAt) }
            var replySequence: UInt64 = 0
            let answered = try endpoint.receive(size: size) { reply in
                replySequence = MessageFormat.sequence(of: reply)
            }
            let returnedAt = paced ? clock.now() : 0
            guard answered else { throw IPCError.peerClosed("consumer closed the channel before answering message \(sequence)") }
            if replySequence != sequence { tally.wrongReplies &+= 1 }
            previousSentAt = sentAt
            sequence &+= 1
            if paced && timed {
                tally.roundTrips.record(from: sentAt, to: returnedAt)
                // A schedule the channel cannot keep falls behind the clock: stop on the clock.
                if returnedAt >= deadline { break }
            }
        }
        let loopEnd = MonotonicClock.now()
        let timed = sequence > warmup ? sequence - warmup : 0
        try sendEndMarker(endpoint, size: size, timedMessages: timed)
        return tally.result(timedMessages: timed, messageBytes: size, loopEnd: loopEnd)
    }

    /// Consumer side of ping-pong: checks and touches each message, records its one-way delay (from
    /// the embedded send time to when the message is received and touched), and answers with a
    /// message of the same size. The bookkeeping comes after the answer, so it does not lengthen
    /// the round trip.
    static func latencyConsumer<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, _ task: WorkerTask) throws -> WorkerResult {
        let size = task.options.messageBytes
        let clock = task.clock
        var tally = PingPongConsumerTally(task)

        while true {
            var sequence: UInt64 = 0
            var sentAt: UInt64 = 0
            var arrivedAt: UInt64 = 0
            let received = try endpoint.receive(size: size) { message in
                sequence = MessageFormat.sequence(of: message)
                sentAt = MessageFormat.sentAt(of: message)
                if sequence & MessageFormat.endMarker == 0 { tally.inspector.inspect(message, sequence: sequence) }
                // Arrival: the message is in hand and the touch policy applied (an in-place ring's
                // payload is read where it lies, as a copying mechanism's is copied out).
                arrivedAt = clock.now()
            }
            guard received else { throw IPCError.peerClosed("producer closed the channel before its end marker") }
            if sequence & MessageFormat.endMarker != 0 {
                tally.finish(endMarker: sequence)
                break
            }
            try endpoint.send(size: size) { reply in
                // The reply echoes the request's send time rather than carrying the arrival time: a reply
                // that waited for the clock read would lengthen the round trip it is part of.
                MessageFormat.stamp(reply, sequence: sequence, sentAt: sentAt)
            }
            tally.count(sequence: sequence, sentAt: sentAt, arrivedAt: arrivedAt)
        }
        return tally.result(messageBytes: size)
    }

    /// Producer side of streaming: sends as fast as the endpoint accepts, then the end marker.
    static func throughputProducer<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, _ task: WorkerTask) throws -> WorkerResult {
        let size = task.options.messageBytes
        let verify = task.touch == .verify
        let warmup = UInt64(task.warmupMessages)
        let limit = warmup + UInt64(task.maximumMessages)
        let fault = FaultSchedule(task.fault, warmup: warmup, limit: limit)
        var sequence: UInt64 = 0
        var loopStart: UInt64 = 0
        var deadline = UInt64.max
        var meter = CPUMeter()
        let cpuBefore = Affinity.currentCPU()

        while sequence < limit {
            if sequence == warmup {
                meter.start()
                loopStart = MonotonicClock.now()
                if task.durationNanoseconds > 0 { deadline = loopStart + task.durationNanoseconds }
            }
            let outgoing = fault.sequenceToSend(at: sequence)
            if outgoing != FaultSchedule.skip {
                try endpoint.send(size: size) { message in
                    MessageFormat.stamp(message, sequence: outgoing, sentAt: loopStart)
                    if verify { MessageFormat.writePattern(message, sequence: outgoing) }
                    if outgoing == fault.corruptSequence { message[size - 1] ^= 0xFF }
                }
            }
            sequence &+= 1
            // The clock is read every 64 messages only, so it costs nothing measurable per message.
            if sequence & 63 == 0, sequence > warmup, MonotonicClock.now() >= deadline { break }
        }
        let loopEnd = MonotonicClock.now()
        let timed = sequence > warmup ? sequence - warmup : 0
        try sendEndMarker(endpoint, size: size, timedMessages: timed)
        var result = WorkerResult(
            role: .producer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: timed,
            messagesSentByProducer: timed, payloadBytes: timed * UInt64(size), lost: 0, reordered: 0, corrupt: 0,
            loopStartNanoseconds: loopStart, loopEndNanoseconds: loopEnd, readChecksum: 0)
        result.cpuUsage = meter.finish()
        return result
    }

    /// Consumer side of streaming: checks every sequence number and touches every payload; its clock
    /// stops when the end marker arrives, i.e. after the last byte of the last timed message.
    static func throughputConsumer<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, _ task: WorkerTask) throws -> WorkerResult {
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
                    firstReceive = MonotonicClock.now()
                }
                timed &+= 1
            }
        }
        let lastReceive = MonotonicClock.now()
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

    private static func sendEndMarker<Endpoint: MessageEndpoint>(_ endpoint: Endpoint, size: Int, timedMessages: UInt64) throws {
        try endpoint.send(size: size) { message in
            MessageFormat.stamp(message, sequence: MessageFormat.endMarker | timedMessages, sentAt: MonotonicClock.now())
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

/// Where a test-only injected fault falls in the stream: a little after warm-up.
struct FaultSchedule {
    static let skip = UInt64.max
    let dropSequence: UInt64
    let swapSequence: UInt64
    let corruptSequence: UInt64

    init(_ fault: InjectedFault?, warmup: UInt64, limit: UInt64) {
        let at = Swift.min(warmup + 10, limit > 2 ? limit - 2 : 0)
        dropSequence = fault == .drop ? at : .max
        swapSequence = fault == .reorder ? at : .max
        corruptSequence = fault == .corrupt ? at : .max
    }

    @inline(__always)
    func sequenceToSend(at sequence: UInt64) -> UInt64 {
        if sequence == dropSequence { return Self.skip }
        if sequence == swapSequence { return sequence + 1 }
        if swapSequence != .max, sequence == swapSequence + 1 { return swapSequence }
        return sequence
    }
}
