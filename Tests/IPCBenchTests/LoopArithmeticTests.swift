import Foundation
@testable import IPCBench
import Testing

// The harness's one timed loop (Loops), driven in-process against a scripted clock and fake
// endpoints that stand in for the peer: every figure the loop produces is checked exactly against
// what the script implies. scripts/mutation-check breaks the loop on purpose and expects these to fail.

/// A clock that moves only when the script says so. Loop-clock ticks run at two per ns, so a tick
/// conversion that is skipped or inverted shows.
final class ScriptedClock: TimedLoopClock {
    let nanosecondsPerTick = 0.5
    private(set) var tick: UInt64 = 10_000_000
    private(set) var monotonic: UInt64 = 7_000_000_000
    private(set) var waits: [UInt64] = []

    func now() -> UInt64 { tick }
    func monotonicNow() -> UInt64 { monotonic }
    func ticks(nanoseconds: UInt64) -> UInt64 { nanoseconds * 2 }
    func wait(until time: UInt64) {
        waits.append(time)
        if tick < time { advance(nanoseconds: (time - tick) / 2) }
    }

    func advance(nanoseconds: UInt64) {
        tick += nanoseconds * 2
        monotonic += nanoseconds
    }
}

/// A latency producer's peer: answers each message after the script's delay, and checks what the
/// producer wrote.
final class ScriptedConsumerPeer: MessageEndpoint {
    let clock: ScriptedClock
    /// ns from a message's send to its reply, by sequence number.
    let roundTrip: (UInt64) -> UInt64
    /// A sequence number whose reply names another message.
    var wrongReplyTo: UInt64?
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
    private(set) var requests: [UInt64] = []
    private(set) var payloadsWithPattern = 0
    private(set) var payloadsUntouched = 0
    private(set) var endMarker: UInt64?

    init(clock: ScriptedClock, roundTrip: @escaping (UInt64) -> UInt64) {
        self.clock = clock
        self.roundTrip = roundTrip
    }

    deinit { buffer.deallocate() }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
        message.initializeMemory(as: UInt8.self, repeating: 0xA5)
        fill(message)
        let sequence = MessageFormat.sequence(of: UnsafeRawBufferPointer(message))
        if sequence & MessageFormat.endMarker != 0 {
            endMarker = sequence & ~MessageFormat.endMarker
            return
        }
        requests.append(sequence)
        let payload = UnsafeRawBufferPointer(rebasing: message[MessageFormat.headerBytes...])
        if MessageFormat.patternMatches(UnsafeRawBufferPointer(message), sequence: sequence) { payloadsWithPattern += 1 }
        if payload.allSatisfy({ $0 == 0xA5 }) { payloadsUntouched += 1 }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let sequence = requests.last!
        clock.advance(nanoseconds: roundTrip(sequence))
        let reply = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
        MessageFormat.stampReply(reply, answering: sequence == wrongReplyTo ? sequence + 1 : sequence, sentAt: 0)
        consume(UnsafeRawBufferPointer(reply))
        return true
    }

    func close() {}
}

/// A latency consumer's peer: sends each message stamped the script's one-way delay ago, with the
/// pattern written, and keeps the consumer's replies.
final class ScriptedProducerPeer: MessageEndpoint {
    let clock: ScriptedClock
    let count: UInt64
    /// ns from send to arrival, by sequence number.
    let oneWay: (UInt64) -> UInt64
    var corruptSequence: UInt64?
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
    private var next: UInt64 = 0
    private(set) var replies: [(sequence: UInt64, sentAt: UInt64)] = []
    private(set) var sentAt: [UInt64] = []
    /// Sum of every message's bytes as 8-byte words: what a consumer that reads every byte folds.
    private(set) var expectedChecksum: UInt64 = 0

    init(clock: ScriptedClock, count: UInt64, oneWay: @escaping (UInt64) -> UInt64) {
        self.clock = clock
        self.count = count
        self.oneWay = oneWay
    }

    deinit { buffer.deallocate() }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
        clock.advance(nanoseconds: 1000)
        if next == count {
            MessageFormat.stamp(message, sequence: MessageFormat.endMarker | (count - 2), sentAt: 0)
        } else {
            let stamp = clock.now() - oneWay(next) * 2
            MessageFormat.stamp(message, sequence: next, sentAt: stamp)
            MessageFormat.writePattern(message, sequence: next)
            if next == corruptSequence { message[size - 1] ^= 1 }
            expectedChecksum &+= MessageFormat.readAll(UnsafeRawBufferPointer(message))
            sentAt.append(stamp)
            next += 1
        }
        consume(UnsafeRawBufferPointer(message))
        return true
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let reply = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
        reply.initializeMemory(as: UInt8.self, repeating: 0)
        fill(reply)
        replies.append((MessageFormat.sequence(of: UnsafeRawBufferPointer(reply)), MessageFormat.sentAt(of: UnsafeRawBufferPointer(reply))))
    }

    func close() {}
}

/// A stream: the producer's messages are kept (each send costs the script's time on the monotonic
/// clock) and replayed to the consumer (each receive likewise).
final class ScriptedStream: MessageEndpoint {
    let clock: ScriptedClock
    let sendNanoseconds: UInt64
    let receiveNanoseconds: UInt64
    private(set) var messages: [[UInt8]] = []
    private var replayed = 0

    init(clock: ScriptedClock, sendNanoseconds: UInt64, receiveNanoseconds: UInt64) {
        self.clock = clock
        self.sendNanoseconds = sendNanoseconds
        self.receiveNanoseconds = receiveNanoseconds
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        var message = [UInt8](repeating: 0xA5, count: size)
        message.withUnsafeMutableBytes { fill($0) }
        messages.append(message)
        clock.advance(nanoseconds: sendNanoseconds)
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard replayed < messages.count else { return false }
        clock.advance(nanoseconds: receiveNanoseconds)
        messages[replayed].withUnsafeBytes { consume($0) }
        replayed += 1
        return true
    }

    func close() {}

    /// Messages that are not the end marker, and which of them carry their full pattern.
    var dataMessages: [[UInt8]] {
        messages.filter { $0.withUnsafeBytes { MessageFormat.sequence(of: $0) } & MessageFormat.endMarker == 0 }
    }
}

struct PassThroughMechanism: Mechanism {
    let id = "scripted"
    let summary = "in-process fake"
    func variants(for mode: Mode) -> [String] { ["fake"] }
    func copies(for variant: String) -> Int { 0 }
    func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous { Rendezvous() }
    func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener { fatalError() }
    func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint { fatalError() }
}

func scriptedTask(
    _ mode: Mode, _ role: Role, size: Int = 64, warmup: Int, messages: Int, produce: Produce = .write, touch: Touch = .read,
    durationNanoseconds: UInt64 = 0, sendIntervalNanoseconds: UInt64 = 0
) -> WorkerTask {
    var task = WorkerTask(
        mechanismID: "scripted", role: role, options: EndpointOptions(mode: mode, messageBytes: size, variant: "fake"),
        produce: produce, touch: touch, cpu: nil, warmupMessages: warmup, maximumMessages: messages,
        durationNanoseconds: durationNanoseconds, rendezvous: Rendezvous(), published: [:], fault: nil)
    task.sendIntervalNanoseconds = sendIntervalNanoseconds
    return task
}

func scriptedCell(_ mode: Mode, size: Int) -> Cell {
    Cell(mechanism: PassThroughMechanism(), mode: mode, variant: "fake", messageBytes: size, touch: .read,
         placement: Placement(producerCPU: nil, consumerCPU: nil))
}

@Suite("Timed loop arithmetic (scripted clock)")
struct LoopArithmeticTests {
    /// Histogram values as (ns, count), sorted.
    func values(_ histogram: LatencyHistogram?) -> [UInt64: UInt64] {
        var result: [UInt64: UInt64] = [:]
        guard let histogram else { return result }
        for bucket in histogram.histogram.recordedValues() { result[bucket.value, default: 0] += bucket.count }
        return result
    }

    @Test("Closed-loop RTT: warm-up left out, one sample per timed message, exact values, RTT/2 halves them")
    func closedLoopRoundTrips() throws {
        let clock = ScriptedClock()
        // Warm-up round trips take 5 µs, timed ones 100 + (sequence mod 4) × 10 ns.
        let peer = ScriptedConsumerPeer(clock: clock) { $0 < 20 ? 5_000 : 100 + ($0 % 4) * 10 }
        let result = try Loops.run(peer, scriptedTask(.latency, .producer, warmup: 20, messages: 400), clock: clock)
        #expect(result.messages == 400)
        #expect(result.roundTrip?.count == 400)
        #expect(values(result.roundTrip) == [100: 100, 110: 100, 120: 100, 130: 100])
        #expect(result.reordered == 0)
        #expect(peer.requests == Array(0..<420))
        #expect(peer.endMarker == 400)

        let producer = result
        var consumer = producer
        consumer.role = .consumer
        consumer.messagesSentByProducer = 400
        let outcome = CellOutcome.aggregate(scriptedCell(.latency, size: 64), [ProcessPair.Results(producer: producer, consumer: consumer)])
        #expect(outcome.halfRoundTrip?.min == 50)
        #expect(outcome.halfRoundTrip?.max == 65)
        #expect(outcome.halfRoundTrip?.mean == 57.5)
        #expect(outcome.status == .ok)
    }

    @Test("Every round trip recorded, the first half and the second half apart: a run that slows down is flagged")
    func driftBetweenHalves() throws {
        let clock = ScriptedClock()
        let peer = ScriptedConsumerPeer(clock: clock) { $0 < 10 ? 1_000 : ($0 < 10 + 300 ? 200 : 300) }
        let result = try Loops.run(peer, scriptedTask(.latency, .producer, warmup: 10, messages: 600), clock: clock)
        let halves = try #require(result.roundTripHalves)
        #expect(values(halves[0]) == [200: 300])
        #expect(values(halves[1]) == [300: 300])
        var consumer = result
        consumer.role = .consumer
        consumer.messagesSentByProducer = 600
        let outcome = CellOutcome.aggregate(scriptedCell(.latency, size: 64), [ProcessPair.Results(producer: result, consumer: consumer)])
        #expect(outcome.driftPercent == 50)
        #expect(outcome.drifted == true)

        let steadyClock = ScriptedClock()
        let steady = ScriptedConsumerPeer(clock: steadyClock) { _ in 200 }
        let steadyResult = try Loops.run(steady, scriptedTask(.latency, .producer, warmup: 10, messages: 600), clock: steadyClock)
        var steadyConsumer = steadyResult
        steadyConsumer.role = .consumer
        steadyConsumer.messagesSentByProducer = 600
        let steadyOutcome = CellOutcome.aggregate(
            scriptedCell(.latency, size: 64), [ProcessPair.Results(producer: steadyResult, consumer: steadyConsumer)])
        #expect(steadyOutcome.driftPercent == 0)
        #expect(steadyOutcome.drifted == false)
    }

    @Test("A duration-limited run splits its halves at half the duration")
    func driftSplitByDuration() throws {
        let clock = ScriptedClock()
        // 100 µs at 200 ns per round trip: 500 messages, 250 per half (the count limit is far off).
        let peer = ScriptedConsumerPeer(clock: clock) { $0 < 5 ? 1_000 : 200 }
        let result = try Loops.run(peer, scriptedTask(.latency, .producer, warmup: 5, messages: 1_000_000, durationNanoseconds: 100_000), clock: clock)
        #expect(result.messages == 500)
        let halves = try #require(result.roundTripHalves)
        #expect(halves[0].count == 250)
        #expect(halves[1].count == 250)
    }

    @Test("The producer writes every payload byte under produce=write and only the header under produce=header")
    func producePolicy() throws {
        for produce in Produce.allCases {
            let clock = ScriptedClock()
            let peer = ScriptedConsumerPeer(clock: clock) { _ in 100 }
            _ = try Loops.run(peer, scriptedTask(.latency, .producer, size: 1000, warmup: 3, messages: 50, produce: produce), clock: clock)
            #expect(peer.requests.count == 53)
            #expect(peer.payloadsWithPattern == (produce == .write ? 53 : 0), "\(produce)")
            #expect(peer.payloadsUntouched == (produce == .header ? 53 : 0), "\(produce)")
        }
    }

    @Test("A reply that does not answer the message it follows is counted")
    func wrongReplyCounted() throws {
        let clock = ScriptedClock()
        let peer = ScriptedConsumerPeer(clock: clock) { _ in 100 }
        peer.wrongReplyTo = 30
        let result = try Loops.run(peer, scriptedTask(.latency, .producer, warmup: 10, messages: 100), clock: clock)
        #expect(result.reordered == 1)
    }

    @Test("Consumer: one-way delays exact and only for timed messages, every byte read, replies written by the consumer")
    func consumerSide() throws {
        let clock = ScriptedClock()
        let peer = ScriptedProducerPeer(clock: clock, count: 102) { $0 < 2 ? 9_000 : 400 + ($0 % 2) * 100 }
        let result = try Loops.run(peer, scriptedTask(.latency, .consumer, size: 100, warmup: 2, messages: 100), clock: clock)
        #expect(result.messages == 100)
        #expect(values(result.oneWay) == [400: 50, 500: 50])
        #expect(result.readChecksum == peer.expectedChecksum)
        #expect(result.lost == 0 && result.reordered == 0 && result.corrupt == 0)
        #expect(peer.replies.count == 102)
        for (index, reply) in peer.replies.enumerated() {
            #expect(reply.sequence == UInt64(index) | MessageFormat.replyFlag)
            #expect(reply.sentAt == peer.sentAt[index])
        }
    }

    @Test("touch=verify counts a corrupt payload; touch=none reads nothing")
    func touchPolicies() throws {
        let clock = ScriptedClock()
        let peer = ScriptedProducerPeer(clock: clock, count: 52) { _ in 400 }
        peer.corruptSequence = 20
        let verified = try Loops.run(peer, scriptedTask(.latency, .consumer, size: 100, warmup: 2, messages: 50, touch: .verify), clock: clock)
        #expect(verified.corrupt == 1)

        let untouchedClock = ScriptedClock()
        let untouched = ScriptedProducerPeer(clock: untouchedClock, count: 52) { _ in 400 }
        let result = try Loops.run(untouched, scriptedTask(.latency, .consumer, size: 100, warmup: 2, messages: 50, touch: .none), clock: untouchedClock)
        #expect(result.readChecksum == 0)
    }

    @Test("Open loop: each message measured from its intended send time, so a stall shows in every message it delayed")
    func openLoopSchedule() throws {
        let clock = ScriptedClock()
        // Warm-up 2 messages; then one every 500 ns; the third timed reply takes 1.7 µs, the others 150 ns
        // (values under 2048 ns, which the histogram holds exactly).
        let peer = ScriptedConsumerPeer(clock: clock) { $0 == 4 ? 1_700 : 150 }
        let task = scriptedTask(.latency, .producer, warmup: 2, messages: 10, sendIntervalNanoseconds: 500)
        let result = try Loops.run(peer, task, clock: clock)
        #expect(result.messages == 10)
        // Intended sends at L, L+500, …: replies at +150, +650, +2700 (the stall), then +2850, +3000,
        // +3150, +3300 for messages intended at +1500…+3000, then back on schedule.
        #expect(values(result.roundTrip) == [150: 5, 300: 1, 650: 1, 1000: 1, 1350: 1, 1700: 1])
        #expect(clock.waits.count == 10)
    }

    @Test("Streaming: the consumer's bytes over the producer's first timed send to the consumer's last receive")
    func throughputInterval() throws {
        let clock = ScriptedClock()
        let stream = ScriptedStream(clock: clock, sendNanoseconds: 1_000, receiveNanoseconds: 250)
        let producer = try Loops.run(stream, scriptedTask(.throughput, .producer, size: 4096, warmup: 8, messages: 100), clock: clock)
        #expect(producer.messages == 100)
        #expect(stream.dataMessages.count == 108)
        for message in stream.dataMessages {
            message.withUnsafeBytes { #expect(MessageFormat.patternMatches($0, sequence: MessageFormat.sequence(of: $0))) }
        }
        let consumer = try Loops.run(stream, scriptedTask(.throughput, .consumer, size: 4096, warmup: 8, messages: 100), clock: clock)
        #expect(consumer.messages == 100)
        #expect(consumer.messagesSentByProducer == 100)
        #expect(consumer.lost == 0 && consumer.reordered == 0)
        // Producer: first timed send at its loop start; 100 timed sends of 1 µs, the end marker 1 µs.
        // Consumer: 109 receives of 250 ns after that. The interval ends at the consumer's last receive.
        let elapsed = Double(consumer.lastReceiveNanoseconds! - producer.loopStartNanoseconds)
        #expect(elapsed == 101_000 + 109 * 250)
        #expect(producer.loopEndNanoseconds - producer.loopStartNanoseconds == 100_000)
        let outcome = CellOutcome.aggregate(scriptedCell(.throughput, size: 4096), [ProcessPair.Results(producer: producer, consumer: consumer)])
        #expect(outcome.bytesPerSecond == 100 * 4096 / (elapsed / 1e9))
        #expect(outcome.messagesPerSecond == 100 / (elapsed / 1e9))
    }

    @Test("Streaming: a missing and a late message are counted as lost and reordered")
    func throughputSequenceCheck() throws {
        let clock = ScriptedClock()
        let stream = ScriptedStream(clock: clock, sendNanoseconds: 100, receiveNanoseconds: 100)
        var task = scriptedTask(.throughput, .producer, size: 64, warmup: 4, messages: 40)
        task.fault = .drop
        let dropping = try #require(FaultInjectingEndpoint.wrapping(stream, for: task))
        _ = try Loops.run(dropping, task, clock: clock)
        let consumer = try Loops.run(stream, scriptedTask(.throughput, .consumer, size: 64, warmup: 4, messages: 40), clock: clock)
        #expect(consumer.lost == 1)
        #expect(consumer.reordered == 0)

        let reorderClock = ScriptedClock()
        let reorderStream = ScriptedStream(clock: reorderClock, sendNanoseconds: 100, receiveNanoseconds: 100)
        task.fault = .reorder
        let reordering = try #require(FaultInjectingEndpoint.wrapping(reorderStream, for: task))
        _ = try Loops.run(reordering, task, clock: reorderClock)
        let reordered = try Loops.run(reorderStream, scriptedTask(.throughput, .consumer, size: 64, warmup: 4, messages: 40), clock: reorderClock)
        #expect(reordered.lost == 0)
        #expect(reordered.reordered == 1)
    }

    @Test("Streaming with a duration: the producer reads the clock often enough not to overrun it by more than 256 KiB")
    func throughputDeadline() throws {
        for size in [64, 65536, 1 << 20] {
            let clock = ScriptedClock()
            // Each send takes as long as its size in ns: 10 ms of streaming.
            let stream = ScriptedStream(clock: clock, sendNanoseconds: UInt64(size), receiveNanoseconds: 0)
            let task = scriptedTask(.throughput, .producer, size: size, warmup: 1, messages: 1_000_000_000, durationNanoseconds: 10_000_000)
            let producer = try Loops.run(stream, task, clock: clock)
            let overrun = Int(producer.loopEndNanoseconds - producer.loopStartNanoseconds) - 10_000_000
            #expect(overrun >= 0)
            #expect(overrun <= max(256 << 10, size), "\(size) B messages overran by \(overrun) ns")
        }
    }

    @Test("UDP-style recovered losses reach the lost count through the endpoint's hook")
    func recoveredLossesReported() throws {
        final class Recovering: MessageEndpoint {
            let inner: ScriptedProducerPeer
            init(_ inner: ScriptedProducerPeer) { self.inner = inner }
            func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws { try inner.send(size: size, fill: fill) }
            func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool { try inner.receive(size: size, consume: consume) }
            func close() {}
            var recoveredLosses: UInt64 { 3 }
        }
        let clock = ScriptedClock()
        let result = try Loops.run(Recovering(ScriptedProducerPeer(clock: clock, count: 12) { _ in 100 }),
                                   scriptedTask(.latency, .consumer, warmup: 2, messages: 10), clock: clock)
        #expect(result.lost == 3)
    }

    @Test("No mechanism brings a timed loop of its own")
    func oneTimedLoop() throws {
        let mechanisms = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/IPCBench/Mechanisms")
        let files = try FileManager.default.contentsOfDirectory(atPath: mechanisms.path).filter { $0.hasSuffix(".swift") }
        #expect(!files.isEmpty)
        for file in files {
            let source = try String(contentsOfFile: mechanisms.appendingPathComponent(file).path, encoding: .utf8)
            let defines = source.split(separator: "\n").contains { line in
                line.contains("func runHarnessLoop") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("///")
            }
            #expect(file == "MessageEndpoint.swift" || !defines, "\(file) defines its own timed loop")
        }
    }
}
