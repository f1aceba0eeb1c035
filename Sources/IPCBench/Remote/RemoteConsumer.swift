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
    /// A frame has begun once poll says readable: its rest arrives promptly or the link is broken.
    private let frameSeconds: Double
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
        } catch let error as ControlProtocolError {
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

    /// The server names a vanished consumer in its error reply; only a closed connection is silent.
    func endsSilently(withinMilliseconds milliseconds: Int) -> Bool { ended && pending.isEmpty }

    func sendGo() throws { try connection.send(.go(cell: cell)) }

    /// The server sends `finished` only after its consumer exited with status 0, and an error reply
    /// otherwise, so a consumer whose result arrived has ended well.
    func reap(timeoutNanoseconds: UInt64) -> WorkerEnding { .success }

    /// Nothing to kill from here: the server ends its consumer when the client's next message
    /// (another `start`, `bye`) or its closing shows the repetition was given up.
    func terminate() {}
}
