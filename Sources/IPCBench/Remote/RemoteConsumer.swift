import Glibc

/// The consumer `ipcbench serve` runs for one repetition, as the client's `WorkerGroup` drives it:
/// the server's replies about that repetition become the worker events a local consumer would send.
/// Replies about an earlier, abandoned repetition are skipped.
final class RemoteConsumer: PairWorker {
    let name: String
    /// The `start` number of this repetition, which the server's replies about it carry.
    let cell: Int
    private let connection: ControlConnection
    /// Where the producer reaches the consumer's data port.
    private let serverAddress: String
    /// A frame has begun once poll says readable: its rest arrives within this or the link is broken
    /// (so a wait may overrun its phase's deadline by at most this much).
    private let frameSeconds: Double
    /// How long a failing producer's peer gets to send its own error reply: the server reaps its
    /// consumer (up to half a second) before it answers.
    static let errorReplyMilliseconds = 1000
    private var pending: [WorkerEvent] = []
    private var ended = false

    init(name: String, cell: Int, connection: ControlConnection, serverAddress: String, frameSeconds: Double) {
        self.name = name
        self.cell = cell
        self.connection = connection
        self.serverAddress = serverAddress
        self.frameSeconds = frameSeconds
    }

    var descriptorForPolling: Int32 { ended ? -1 : connection.descriptor }
    var atEndOfEvents: Bool { ended }

    func bufferedEvent() throws -> WorkerEvent? {
        pending.isEmpty ? nil : pending.removeFirst()
    }

    func readEvents() throws {
        let message: ControlMessage?
        do {
            message = try connection.receive(timeoutSeconds: frameSeconds, accepted: ["bound", "ready", "finished", "error"])
        } catch IPCError.interrupted {
            throw IPCError.interrupted
        } catch {
            ended = true
            pending.append(.failed(reason: "the server's reply could not be read: \(error)"))
            return
        }
        guard let message else {
            ended = true
            pending.append(.failed(reason: "the server closed the control connection"))
            return
        }
        if let event = event(for: message) { pending.append(event) }
    }

    /// What `message` means for this repetition; nil for a late reply about an earlier one.
    func event(for message: ControlMessage) -> WorkerEvent? {
        switch message {
        case let .error(about, text) where about == nil || about == cell:
            return .failed(reason: "server: \(DisplayText.printable(text))")
        case .error(let about?, _) where about < cell, .bound(let about, _) where about < cell,
             .ready(let about, _) where about < cell, .finished(let about, _) where about < cell:
            return nil
        case let .bound(about, port) where about == cell:
            return .bound(published: [NetworkParameters.port: String(port), NetworkParameters.peerAddress: serverAddress])
        case let .ready(about, cpu) where about == cell:
            return .ready(cpu: cpu)
        case let .finished(about, result) where about == cell:
            return .finished(result)
        default:
            return .failed(reason: "the server sent '\(message.name)' about another repetition than \(cell)")
        }
    }

    /// The server's error reply about this repetition, when it comes within `milliseconds` (at least
    /// `errorReplyMilliseconds`): a consumer that crashed there is the cause to name, not the producer
    /// here that lost its connection. Other replies meanwhile stay queued.
    func vanished(withinMilliseconds milliseconds: Int) -> String? {
        let deadline = MonotonicClock.now() + UInt64(max(milliseconds, Self.errorReplyMilliseconds)) * 1_000_000
        while true {
            for case let .failed(reason) in pending { return "\(name) failed: \(reason)" }
            let now = MonotonicClock.now()
            guard !ended, now < deadline else { return nil }
            var entry = pollfd(fd: connection.descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32((deadline - now) / 1_000_000) + 1) > 0 else { continue }
            guard (try? readEvents()) != nil else { return nil }
        }
    }

    func sendGo() throws { try connection.send(.go(cell: cell)) }

    /// The server sends `finished` only after its consumer exited with status 0, and an error reply
    /// otherwise, so a consumer whose result arrived has ended well.
    func reap(timeoutNanoseconds: UInt64) -> WorkerEnding { .success }

    /// Nothing to kill from here: the server ends its consumer when the client's next message
    /// (another `start`, `bye`) or its closing shows the repetition was given up.
    func terminate() {}
}
