import Foundation
import Glibc
@testable import IPCBench
import Testing

/// The one pair protocol: `WorkerGroup` drives local processes and the server's consumer through
/// `PairWorker`, so its barrier and judgement are tested here with scripted workers, in-process, and
/// `RemoteConsumer`'s translation of the server's replies over a socket pair.
@Suite("Pair protocol")
struct PairWorkerTests {
    /// A worker whose events are scripted; it logs what the group asked of it.
    final class ScriptedWorker: PairWorker {
        let name: String
        var events: [WorkerEvent]
        var ending: WorkerEnding
        let log: Log
        private var gone = false

        final class Log { var lines: [String] = [] }

        init(name: String, events: [WorkerEvent], ending: WorkerEnding = .success, log: Log) {
            self.name = name
            self.events = events
            self.ending = ending
            self.log = log
        }

        var descriptorForPolling: Int32 { -1 }
        var atEndOfEvents: Bool { events.isEmpty }
        func bufferedEvent() throws -> WorkerEvent? { events.isEmpty ? nil : events.removeFirst() }
        func readEvents() throws {}
        private var askedIfVanished = 0
        /// Like a reaped process, it has one ending: a second question would be a bug in the caller.
        func vanished(withinMilliseconds milliseconds: Int) -> String? {
            askedIfVanished += 1
            guard events.isEmpty else { return nil }
            return askedIfVanished == 1 ? "\(name) \(ending)" : "\(name) asked twice how it ended"
        }
        func sendGo() throws { log.lines.append("go \(name)") }
        func reap(timeoutNanoseconds: UInt64) -> WorkerEnding { ending }
        func terminate() { log.lines.append("terminate \(name)") }
    }

    /// Launches scripted workers by name, logging each start with the parameters it was given.
    struct ScriptedLauncher: WorkerLauncher {
        let workers: [String: ScriptedWorker]

        func launch(name: String, task: WorkerTask, inherited: [Int32], secret: String, limits: PairLimits) throws -> any PairWorker {
            let worker = workers[name]!
            worker.log.lines.append("start \(name) \(task.role) \(task.published.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))")
            return worker
        }
    }

    static func group(_ consumer: ScriptedWorker, _ producer: ScriptedWorker) -> WorkerGroup {
        let launcher = ScriptedLauncher(workers: [consumer.name: consumer, producer.name: producer])
        var group = WorkerGroup()
        let task = WorkerTask(
            mechanismID: "pipe", role: .consumer, options: EndpointOptions(mode: .latency, messageBytes: 64, variant: ""), produce: .write,
            touch: .read, cpu: nil, warmupMessages: 0, maximumMessages: 10, durationNanoseconds: 0, rendezvous: Rendezvous(), published: [:],
            fault: nil)
        group.consumers.append(.init(name: consumer.name, task: task, inherited: [], secret: "s", launcher: launcher))
        group.producers.append(.init(name: producer.name, task: task, inherited: [], secret: "s", launcher: launcher))
        return group
    }

    static func result(messages: UInt64) -> WorkerResult {
        WorkerResult(
            role: .consumer, cpuBefore: 0, cpuAfter: 0, messages: messages, messagesSentByProducer: messages, payloadBytes: 0,
            lost: 0, reordered: 0, corrupt: 0, loopStartNanoseconds: 0, loopEndNanoseconds: 0, readChecksum: 0)
    }

    @Test("The barrier: the producer starts with the consumer's published endpoint; go only after both are ready, consumer first; results in order")
    func barrierOrder() throws {
        let log = ScriptedWorker.Log()
        let consumer = ScriptedWorker(name: "consumer", events: [.bound(published: ["port": "9"]), .ready(cpu: 1), .finished(Self.result(messages: 7))], log: log)
        let producer = ScriptedWorker(name: "producer", events: [.ready(cpu: 0), .finished(Self.result(messages: 8))], log: log)
        var unclosed: [Int32] = []
        let (consumers, producers) = try Self.group(consumer, producer).run(limits: PairLimits(), durationNanoseconds: 1_000_000, unclosed: &unclosed)
        #expect(consumers.map(\.messages) == [7])
        #expect(producers.map(\.messages) == [8])
        #expect(log.lines == [
            "start consumer consumer ", "start producer producer port=9", "go consumer", "go producer", "terminate consumer", "terminate producer",
        ])
    }

    @Test("A worker that reports failure, ends silently, sends the wrong event, or ends badly after its result fails the repetition, named")
    func failuresAreNamed() throws {
        let finished = WorkerEvent.finished(Self.result(messages: 1))
        let cases: [(consumer: [WorkerEvent], producer: [WorkerEvent], producerEnding: WorkerEnding, expected: String)] = [
            ([.bound(published: [:]), .ready(cpu: 0), .failed(reason: "boom")], [.ready(cpu: 0), finished], .success, "consumer failed during the timed loop: boom"),
            ([.bound(published: [:]), .ready(cpu: 0), finished], [.ready(cpu: 0)], .killed(signal: SIGSEGV), "producer was killed by SIGSEGV during the timed loop"),
            ([.ready(cpu: 0)], [], .success, "a consumer did not report its bound endpoint first"),
            ([.bound(published: [:]), .ready(cpu: 0), .failed(reason: "reset")], [.ready(cpu: 0)], .killed(signal: SIGSEGV),
             "producer was killed by SIGSEGV during the timed loop (then consumer failed: reset)"),
            ([.bound(published: [:]), .ready(cpu: 0), finished], [.ready(cpu: 0), finished], .exited(status: 3), "producer exited with status 3 after reporting its result"),
        ]
        for (consumerEvents, producerEvents, producerEnding, expected) in cases {
            let log = ScriptedWorker.Log()
            let consumer = ScriptedWorker(name: "consumer", events: consumerEvents, log: log)
            let producer = ScriptedWorker(name: "producer", events: producerEvents, ending: producerEnding, log: log)
            var unclosed: [Int32] = []
            do {
                _ = try Self.group(consumer, producer).run(limits: PairLimits(), durationNanoseconds: 1_000_000, unclosed: &unclosed)
                Issue.record("\(expected): the repetition did not fail")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
            #expect(log.lines.filter { $0.hasPrefix("terminate") }.count == log.lines.filter { $0.hasPrefix("start") }.count, "every started worker is ended")
        }
    }

    @Test("RemoteConsumer: the server's replies become worker events; late replies about an earlier repetition are skipped")
    func remoteConsumerTranslatesReplies() throws {
        let (server, client) = try RemoteTests.connectedPair()
        let consumer = RemoteConsumer(name: "consumer on h:1", cell: 5, connection: client, serverAddress: "10.0.0.2", frameSeconds: 2)

        for message: ControlMessage in [
            .finished(cell: 4, result: Self.result(messages: 99)), .error(cell: 4, message: "late"), .bound(cell: 5, port: 4242),
            .ready(cell: 5, cpu: 1), .finished(cell: 5, result: Self.result(messages: 3)), .error(cell: 5, message: "consumer killed\u{1b}[2J"),
            .ready(cell: 6, cpu: 0),
        ] {
            try server.send(message)
        }
        var events: [WorkerEvent] = []
        for _ in 0..<7 {
            try consumer.readEvents()
            while let event = try consumer.bufferedEvent() { events.append(event) }
        }
        #expect(events.count == 5)
        guard events.count == 5 else { return }
        if case let .bound(published) = events[0] {
            #expect(published == [NetworkParameters.port: "4242", NetworkParameters.peerAddress: "10.0.0.2"])
        } else { Issue.record("not bound: \(events[0])") }
        if case let .ready(cpu) = events[1] { #expect(cpu == 1) } else { Issue.record("not ready: \(events[1])") }
        if case let .finished(result) = events[2] { #expect(result.messages == 3) } else { Issue.record("not finished: \(events[2])") }
        if case let .failed(reason) = events[3] {
            #expect(reason.hasPrefix("server: consumer killed") && !reason.contains("\u{1b}"), "\(reason)")
        } else { Issue.record("not failed: \(events[3])") }
        if case let .failed(reason) = events[4] { #expect(reason.contains("another repetition than 5")) } else { Issue.record("\(events[4])") }

        try consumer.sendGo()
        guard case .go(cell: 5)? = try server.receive(timeoutSeconds: 2) else {
            Issue.record("go was not sent for repetition 5")
            return
        }
        server.close()
        try consumer.readEvents()
        guard case let .failed(reason)? = try consumer.bufferedEvent() else {
            Issue.record("a closed connection did not fail the consumer")
            return
        }
        #expect(reason.contains("closed the control connection"))
        #expect(consumer.atEndOfEvents && consumer.descriptorForPolling == -1)
    }

    @Test("A producer's failure names the server's consumer when the server's error reply follows; a torn reply fails the worker, named")
    func remoteCauseAndTornReply() throws {
        let (server, client) = try RemoteTests.connectedPair()
        let consumer = RemoteConsumer(name: "consumer on h:1", cell: 5, connection: client, serverAddress: "10.0.0.2", frameSeconds: 0.3)

        #expect(consumer.vanished(withinMilliseconds: 100) == nil, "no reply: nothing to blame on the consumer")
        try server.send(.ready(cell: 5, cpu: 1))
        try server.send(.error(cell: 5, message: "consumer was killed by SIGSEGV"))
        #expect(consumer.vanished(withinMilliseconds: 100) == "consumer on h:1 failed: server: consumer was killed by SIGSEGV")
        guard case .ready? = try consumer.bufferedEvent() else {
            Issue.record("the ready reply read meanwhile was not kept")
            return
        }

        // The first 4 bytes of a frame, then nothing: the worker fails, naming what happened.
        try server.sendRaw(Array(try ControlProtocol.frame(.ready(cell: 5, cpu: 0)).prefix(4)))
        _ = try consumer.bufferedEvent()  // the queued error
        try consumer.readEvents()
        guard case let .failed(reason)? = try consumer.bufferedEvent() else {
            Issue.record("a torn reply did not fail the remote consumer")
            return
        }
        #expect(reason.contains("could not be read") && reason.contains("no complete control message"), "\(reason)")
        #expect(consumer.atEndOfEvents)
    }

    @Test("--wait timed: an interrupted attempt is tried again with the time left; only the whole timeout ends the wait")
    func timedWaitRetriesInterruptedAttempts() throws {
        var options = EndpointOptions(mode: .latency, messageBytes: 64, variant: "")
        options.wait = .timed
        options.waitTimeoutSeconds = 0.2
        let waiter = TryWaiter(options: options)
        var attempts = 0
        var offered: [UInt64] = []
        try waiter.wait(for: "message") { block, timeout in
            attempts += 1
            offered.append(timeout ?? 0)
            return attempts == 3  // two interrupted attempts first
        }
        #expect(attempts == 3 && offered.allSatisfy { $0 > 0 && $0 <= 200_000_000 } && offered[2] <= offered[0], "\(offered)")

        let start = MonotonicClock.now()
        #expect(throws: IPCError.self) {
            try waiter.wait(for: "message") { _, timeout in
                usleep(UInt32(min(timeout ?? 0, 20_000_000) / 1000))
                return false
            }
        }
        #expect(MonotonicClock.now() - start >= 190_000_000, "the timeout must be the whole wait, not one attempt")
    }
}
