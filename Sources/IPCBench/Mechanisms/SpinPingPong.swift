import CIPCShim
import Glibc

/// The spinning ring's closed-loop ping-pong, written out for its one shared slot.
///
/// In latency mode the ring has one slot, both directions use it, and a stamp in the slot's first
/// cache line says whose turn it is (see RingLayout). A round trip is then a cache line bounced
/// between the two CPUs, the same hand-off the floor probe times, so the harness's own instructions
/// are most of what separates the two. The generic loops go through `RingChannel.send/receive`,
/// which keep the ring's indices, check the ring on every call and reload the endpoint's fields
/// after each store to shared memory. This loop keeps the slot, the stamp word and both stamps in
/// locals, and between noticing a message and answering it does only what the answer needs: with
/// the floor under 150 ns, the p50 round trip went from 1.13–1.15× the floor to 0.60–0.65×
/// (scripts/ab-spin, results/vm-epyc-2026-12-03/ab-spin.txt).
///
/// Same measurement as the generic loops (Loops.latencyProducer/Consumer): warm-up, one clock read
/// per round trip on the producer, sequence check, touch policy, one-way delay, CPU cost. The reply
/// is the request itself, left in the slot and handed back by flipping the stamp to the reply ring's
/// (an in-place echo: its header already holds the sequence and send time the generic loop's reply
/// writes), so the producer still checks that each answer carries its own sequence number.
/// The ring's head and tail indices are not used.
struct SpinPingPong {
    /// The message, in the one slot.
    let message: UnsafeMutableRawPointer
    /// The slot's stamp word, shared by both directions.
    let stampWord: UnsafeMutablePointer<UInt32>
    /// The rings this side sends on and receives from (for their stamps).
    let outgoing: Ring
    let incoming: Ring
    /// How to wait between polls (pauses per poll, when to yield).
    let notifier: SpinNotifier

    /// The one-slot exchange for `task`, or nil when the task needs the generic loops: throughput,
    /// the copy path, or paced sends (whose sleeps need nothing from a leaner turnaround).
    init?(_ channel: RingChannel<SpinNotifier>, _ task: WorkerTask) {
        guard task.options.mode == .latency, !channel.copying, task.sendIntervalNanoseconds == 0,
              let outgoing = channel.outgoing, let incoming = channel.incoming, outgoing.ring.slotCount == 1
        else { return nil }
        self.outgoing = outgoing.ring
        self.incoming = incoming.ring
        message = outgoing.ring.slot(0)
        stampWord = outgoing.ring.stampWord(0)
        precondition(stampWord == incoming.ring.stampWord(0), "a one-slot ring's directions share the slot")
        notifier = outgoing.notifier
    }

    /// Spins until the stamp word holds `stamp` (acquire: the message's bytes are then visible).
    @inline(__always)
    private func wait(for stamp: UInt32) {
        var spins = 0
        while ipcb_load_acquire_u32(stampWord) != stamp {
            notifier.pause(&spins)
        }
    }

    /// Producer: writes message i (sequence, send time, pattern under touch=verify), publishes it by
    /// storing its stamp, and waits for the reply stamp. The clock is read once per round trip, right
    /// before a send; that read also ends the previous round trip, which is recorded while the next
    /// message is in flight.
    func runProducer(_ task: WorkerTask) -> WorkerResult {
        let size = task.options.messageBytes
        let verify = task.touch == .verify
        let buffer = UnsafeMutableRawBufferPointer(start: message, count: size)
        let warmup = UInt64(task.warmupMessages)
        let limit = warmup + UInt64(task.maximumMessages)
        let clock = task.clock
        var tally = PingPongProducerTally(task)
        var deadline = UInt64.max
        var sequence: UInt64 = 0
        var index: UInt32 = 0
        var previousSentAt: UInt64 = 0

        while true {
            if sequence == warmup {
                tally.startTiming()
                if task.durationNanoseconds > 0 { deadline = clock.now() + clock.ticks(nanoseconds: task.durationNanoseconds) }
            }
            let sentAt = clock.now()
            if sequence == limit || sentAt >= deadline {
                if sequence > warmup { tally.roundTrips.record(from: previousSentAt, to: sentAt) }
                break
            }
            MessageFormat.stamp(buffer, sequence: sequence, sentAt: sentAt)
            if verify { MessageFormat.writePattern(buffer, sequence: sequence) }
            ipcb_store_release_u32(stampWord, outgoing.stamp(of: index))
            if sequence > warmup { tally.roundTrips.record(from: previousSentAt, to: sentAt) }
            wait(for: incoming.stamp(of: index))
            if MessageFormat.sequence(of: UnsafeRawBufferPointer(buffer)) != sequence { tally.wrongReplies &+= 1 }
            previousSentAt = sentAt
            sequence &+= 1
            index &+= 1
        }
        let loopEnd = MonotonicClock.now()
        let timed = sequence > warmup ? sequence - warmup : 0
        MessageFormat.stamp(buffer, sequence: MessageFormat.endMarker | timed, sentAt: MonotonicClock.now())
        ipcb_store_release_u32(stampWord, outgoing.stamp(of: index))
        return tally.result(timedMessages: timed, messageBytes: size, loopEnd: loopEnd)
    }

    /// Consumer: waits for message i's stamp, reads the header, applies the touch policy (before
    /// answering: once answered, the producer may overwrite the slot), answers by storing the reply
    /// stamp, and only then reads the clock for the one-way delay. The sequence check and the
    /// one-way record come after the answer too.
    func runConsumer(_ task: WorkerTask) -> WorkerResult {
        let size = task.options.messageBytes
        let buffer = UnsafeRawBufferPointer(start: message, count: size)
        let clock = task.clock
        var tally = PingPongConsumerTally(task)
        var index: UInt32 = 0

        while true {
            wait(for: incoming.stamp(of: index))
            let sequence = MessageFormat.sequence(of: buffer)
            let sentAt = MessageFormat.sentAt(of: buffer)
            if sequence & MessageFormat.endMarker != 0 {
                tally.finish(endMarker: sequence)
                break
            }
            tally.inspector.inspect(buffer, sequence: sequence)
            ipcb_store_release_u32(stampWord, outgoing.stamp(of: index))
            // Arrival is read once the message is in hand and answered: a clock read before the
            // answer held it back by one read's latency (10–15 ns here, against a 60–80 ns round trip).
            let arrivedAt = clock.now()
            index &+= 1
            tally.count(sequence: sequence, sentAt: sentAt, arrivedAt: arrivedAt)
        }
        return tally.result(messageBytes: size)
    }
}

extension SpinRingEndpoint {
    func runTimedLoop(_ task: WorkerTask) throws -> WorkerResult {
        guard let pingPong = SpinPingPong(channel, task) else { return try Loops.run(self, task) }
        return task.role == .producer ? pingPong.runProducer(task) : pingPong.runConsumer(task)
    }
}
