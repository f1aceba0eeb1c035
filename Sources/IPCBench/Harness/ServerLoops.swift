/// The consumer's loops under `--clients`: one server, several producers, each running the usual
/// producer loop with its client number in every header. The same rules as Loops: the harness owns
/// every clock read, the touch, the sequence check (one per client) and the recording; nothing is
/// allocated inside the loop (the per-client state is allocated before it).
extension Loops {
    static func serve<Server: ServerEndpoint, Clock: TimedLoopClock>(
        _ server: Server, _ task: WorkerTask, clock: Clock
    ) throws -> WorkerResult {
        let size = task.options.messageBytes
        var tally = FanInTally(task, clock: clock)
        defer { tally.release() }
        let answers = task.options.mode == .latency

        while tally.endedClients < task.clients {
            var value: UInt64 = 0
            var sentAt: UInt64 = 0
            guard let route = try server.receive(size: size, consume: { message in
                value = MessageFormat.sequence(of: message)
                sentAt = MessageFormat.sentAt(of: message)
                if value & MessageFormat.endMarker == 0 { tally.inspector.inspect(message, sequence: value) }
            }) else {
                throw IPCError.peerClosed("\(task.clients - tally.endedClients) client(s) closed the channel before their end marker")
            }
            // Latency: the arrival for the one-way delay. Streaming reads the clock only for the first
            // timed message (the start of the server's own interval) and after the last.
            let arrivedAt = answers ? clock.now() : tally.timing ? 0 : clock.monotonicNow()
            let client = MessageFormat.client(ofSequence: value)
            guard client < task.clients else {
                tally.strangers &+= 1
                continue
            }
            if value & MessageFormat.endMarker != 0 {
                tally.end(client: client, marker: value)
                continue
            }
            if answers {
                try server.send(to: route, size: size) { reply in
                    MessageFormat.stampReply(reply, answering: value, sentAt: sentAt)
                }
            }
            tally.count(client: client, sequence: value & ~MessageFormat.clientMask, sentAt: sentAt, arrivedAt: arrivedAt)
        }
        var result = tally.result(messageBytes: size, lastReceive: answers ? nil : clock.monotonicNow())
        result.lost &+= server.recoveredLosses
        return result
    }
}

/// The server's bookkeeping: a sequence check, timed count and end marker per client; one touch,
/// one one-way histogram and one CPU meter for the whole server.
struct FanInTally {
    var inspector: PayloadInspector
    /// Messages naming a client beyond the cell's count: not from this cell, counted as corrupt.
    var strangers: UInt64 = 0
    private(set) var endedClients = 0
    private var oneWay: IntervalRecorder
    private let checks: UnsafeMutableBufferPointer<SequenceCheck>
    private let timed: UnsafeMutableBufferPointer<UInt64>
    private let sentByClient: UnsafeMutableBufferPointer<UInt64>
    private let ended: UnsafeMutableBufferPointer<Bool>
    /// True once a timed message arrived.
    private(set) var timing = false
    private var firstTimedReceive: UInt64 = 0
    private var meter = CPUMeter()
    private let cpuBefore = Affinity.currentCPU()
    private let warmup: UInt64
    private let recordsOneWay: Bool
    private let streaming: Bool

    init<Clock: TimedLoopClock>(_ task: WorkerTask, clock: Clock) {
        inspector = PayloadInspector(touch: task.touch)
        oneWay = IntervalRecorder(nanosecondsPerTick: clock.nanosecondsPerTick)
        checks = .allocate(capacity: task.clients)
        checks.initialize(repeating: SequenceCheck())
        timed = .allocate(capacity: task.clients)
        timed.initialize(repeating: 0)
        sentByClient = .allocate(capacity: task.clients)
        sentByClient.initialize(repeating: 0)
        ended = .allocate(capacity: task.clients)
        ended.initialize(repeating: false)
        warmup = UInt64(task.warmupMessages)
        recordsOneWay = task.carriesSendTimestamp && task.options.mode == .latency
        streaming = task.options.mode == .throughput
    }

    /// Counts client `client`'s message `sequence` (its own numbering): the sequence check and, past
    /// the warm-up, the one-way delay (latency) or the first timed arrival (streaming).
    @inline(__always)
    mutating func count(client: Int, sequence: UInt64, sentAt: UInt64, arrivedAt: UInt64) {
        checks[client].observe(sequence)
        guard sequence >= warmup else { return }
        if !timing {
            timing = true
            meter.start()
            firstTimedReceive = arrivedAt
        }
        if recordsOneWay { oneWay.record(from: sentAt, to: arrivedAt) }
        timed[client] &+= 1
    }

    /// Client `client`'s end marker: its count of timed messages shows any never seen as lost. A
    /// second marker from the same client counts as a stranger's message.
    mutating func end(client: Int, marker: UInt64) {
        guard !ended[client] else {
            strangers &+= 1
            return
        }
        ended[client] = true
        endedClients += 1
        let sent = marker & ~(MessageFormat.endMarker | MessageFormat.clientMask)
        sentByClient[client] = sent
        checks[client].finish(sentCount: warmup + sent)
    }

    /// The server's result: totals, and per client its timed messages and what it said it sent.
    mutating func result(messageBytes: Int, lastReceive: UInt64?) -> WorkerResult {
        let clients = Array(timed)
        let total = clients.reduce(0, +)
        var result = WorkerResult(
            role: .consumer, cpuBefore: cpuBefore, cpuAfter: Affinity.currentCPU(), messages: total,
            messagesSentByProducer: sentByClient.reduce(0, +), payloadBytes: total * UInt64(messageBytes),
            lost: checks.reduce(0) { $0 + $1.lost }, reordered: checks.reduce(0) { $0 + $1.reordered },
            corrupt: inspector.corrupt + strangers, oneWay: recordsOneWay ? oneWay.finish() : nil,
            loopStartNanoseconds: 0, loopEndNanoseconds: 0, readChecksum: inspector.checksum)
        if !recordsOneWay { _ = oneWay.finish() }
        result.lastReceiveNanoseconds = lastReceive
        if streaming, timing { result.firstReceiveNanoseconds = firstTimedReceive }
        result.messagesPerClient = clients
        result.sentByClient = Array(sentByClient)
        result.cpuUsage = meter.finish()
        return result
    }

    func release() {
        checks.deallocate()
        timed.deallocate()
        sentByClient.deallocate()
        ended.deallocate()
    }
}
