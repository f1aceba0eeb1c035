import Foundation
import Glibc

/// One client's connection to the server.
final class ServerSession {
    let server: RemoteServer
    let connection: ControlConnection
    private(set) var repetitions = 0
    private(set) var failures = 0
    private var greeted = false
    /// When the client last made progress (connected, or started a repetition): the idle timeout
    /// counts from here, so messages that start nothing cannot hold the connection open.
    private var lastProgress = MonotonicClock.now()
    /// A message that arrived while a repetition waited for its go (the client gave that one up).
    private var pending: ControlMessage?

    static let accepted: Set<String> = ["hello", "start", "go", "bye"]

    init(server: RemoteServer, connection: ControlConnection) {
        self.server = server
        self.connection = connection
    }

    /// Answers messages until the client leaves or can no longer be trusted; returns how it ended.
    func run() -> String {
        while true {
            let message: ControlMessage
            do {
                if let next = pending {
                    pending = nil
                    message = next
                } else {
                    let idle = greeted ? server.options.idleTimeoutSeconds : min(RemoteServer.greetingSeconds, server.options.idleTimeoutSeconds)
                    guard let received = try connection.receive(deadline: Deadline(seconds: idle, from: lastProgress), accepted: Self.accepted) else {
                        return "the client closed the connection"
                    }
                    message = received
                }
            } catch let ControlProtocolError.message(text) {
                // The frame was whole, so the stream is still in step: answer and go on.
                if !reply(.error(cell: nil, message: text)) { return "could not answer: the client stopped reading" }
                continue
            } catch let ControlProtocolError.framing(text) {
                _ = reply(.error(cell: nil, message: text))
                return "closed: \(text)"
            } catch IPCError.interrupted {
                _ = reply(.error(cell: nil, message: "the server is shutting down"))
                return "server interrupted"
            } catch {
                _ = reply(.error(cell: nil, message: "\(error)"))
                return "closed: \(error)"
            }
            switch message {
            case .hello:
                greeted = true
                guard reply(.welcome(server.info)) else { return "could not answer: the client stopped reading" }
            case let .start(cell, request) where greeted:
                repetitions += 1
                defer { lastProgress = MonotonicClock.now() }
                do {
                    try runConsumer(cell: cell, request: request)
                } catch IPCError.interrupted {
                    _ = reply(.error(cell: cell, message: "the server is shutting down"))
                    return "server interrupted"
                } catch let ControlProtocolError.framing(text) {
                    _ = reply(.error(cell: cell, message: text))
                    return "closed: \(text)"
                } catch {
                    failures += 1
                    // A reply that could not be written whole leaves the stream out of frame: end here.
                    if !reply(.error(cell: cell, message: "\(error)")) { return "could not answer: the client stopped reading" }
                }
            case .bye:
                return "the client said bye"
            default:
                let text = greeted ? "unexpected '\(message.name)' between repetitions" : "the first message must be 'hello'"
                // A late message of a repetition that already ended (its `go` arrived after the set-up
                // deadline) is answered under that repetition's number, which the client skips; with
                // no number it would count against the client's next repetition.
                if !reply(.error(cell: message.cell, message: text)) { return "could not answer: the client stopped reading" }
            }
        }
    }

    /// Sends a message; false if the client cannot be written to any more.
    private func reply(_ message: ControlMessage) -> Bool {
        (try? connection.send(message)) != nil
    }

    /// One repetition's consumer: started, bound, synchronised with the client's producer, measured,
    /// reaped, and everything it used removed, whatever happens.
    private func runConsumer(cell: Int, request: CellRequest) throws {
        let (mechanism, cpu) = try server.validate(request)
        let setup = Deadline(seconds: request.setupTimeoutSeconds)
        try server.runAlone(until: setup) {
            try runConsumer(cell: cell, request: request, mechanism: mechanism, cpu: cpu, setup: setup)
        }
    }

    private func runConsumer(cell: Int, request: CellRequest, mechanism: any Mechanism, cpu: Int?, setup: Deadline) throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        var rendezvous = try mechanism.prepare(workspace: workspace.path, options: request.task.options)
        defer {
            (rendezvous.producerDescriptors + rendezvous.consumerDescriptors).forEach { close($0) }
            mechanism.teardown(rendezvous)
        }
        rendezvous.parameters[NetworkParameters.bindAddress] = server.options.bind.host
        if let dataPort = server.options.dataPort { rendezvous.parameters[NetworkParameters.dataPort] = String(dataPort) }

        var task = request.task
        task.role = .consumer
        task.cpu = cpu
        task.rendezvous = rendezvous
        task.published = [:]
        // The producer's send times are on the client's clock: no one-way delay from them. The loop
        // clock's calibration is the client's too: this host's replaces it (paced cells keep theirs).
        task.carriesSendTimestamp = false
        if task.clock.usesTimeStampCounter { task.clock = LoopClock.host }
        let consumer = try WorkerProcess(
            role: .consumer, executable: server.options.workerExecutable, task: task, inherited: rendezvous.consumerDescriptors,
            peerSecret: request.peerSecret)
        defer { consumer.terminate() }
        let control = connection.descriptor

        guard case let (_, .bound(published)) = try EventWaiter.next(from: [consumer], deadline: setup, phase: "consumer set-up", watching: control),
              let port = published[NetworkParameters.port].flatMap({ UInt16($0) })
        else {
            throw IPCError.worker("consumer did not report its bound port first")
        }
        try connection.send(.bound(cell: cell, port: port))
        guard case let (_, .ready(cpuSeen)) = try EventWaiter.next(from: [consumer], deadline: setup, phase: "connection set-up", watching: control) else {
            throw IPCError.worker("consumer sent an unexpected event before ready")
        }
        try connection.send(.ready(cell: cell, cpu: cpuSeen))

        // The barrier: the client says go once its producer is ready too.
        let answer = try connection.receive(deadline: setup, accepted: Self.accepted)
        guard case .go(cell)? = answer else {
            // Anything else (a new start, bye, end of file) means the client gave this repetition up.
            pending = answer
            throw IPCError.worker("the client abandoned repetition \(cell) before its go")
        }
        try consumer.sendGo()

        let measuring = Deadline(seconds: Double(task.durationNanoseconds) / 1e9 + request.cellTimeoutSeconds)
        guard case let (_, .finished(result)) = try EventWaiter.next(from: [consumer], deadline: measuring, phase: "the timed loop", watching: control) else {
            throw IPCError.worker("consumer sent an unexpected event instead of its result")
        }
        let ending = consumer.reap(timeoutNanoseconds: 2_000_000_000)
        guard ending == .success else { throw IPCError.worker("consumer \(ending) after reporting its result") }
        try connection.send(.finished(cell: cell, result: result))
    }
}
