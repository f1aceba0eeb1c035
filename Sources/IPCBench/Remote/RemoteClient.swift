import Foundation
import Glibc

/// `ipcbench run --remote`: the client's side of a session with `ipcbench serve`. Each repetition's
/// producer is a local worker process, as in a local pair, connected to the consumer the server
/// started; `runPair` is the `PairRunner` the suite uses instead of `ProcessPair`.
public final class RemoteClient {
    /// The server as the user named it (`HOST:PORT`): written to the CSV's `remote` column.
    public let address: String
    /// The server's IPv4 address, numeric, for the producers.
    public let serverAddress: String
    public let server: ServerInfo
    private let connection: ControlConnection
    private var lastCell = 0

    /// Connects (resolving a host name to IPv4) and exchanges hello/welcome, each bounded by `timeoutSeconds`.
    public init(_ target: HostAndPort, timeoutSeconds: Double = 10) throws {
        address = target.description
        serverAddress = try Self.resolve(target.host)
        let fd = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        // On Linux SO_SNDTIMEO bounds connect() too: an unreachable host fails instead of hanging.
        var timeout = timeval(tv_sec: Int(timeoutSeconds.rounded(.up)), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        do {
            try Socket.connect(fd, Socket.ipv4Address(serverAddress, port: target.port), target.description)
        } catch let IPCError.system(_, code, _) {
            Glibc.close(fd)
            let hint = code == ECONNREFUSED ? " (is `ipcbench serve` running there, bound to that address?)" : ""
            throw IPCError.setup("cannot connect to the server at \(target): \(String(cString: strerror(code == EINPROGRESS ? ETIMEDOUT : code)))\(hint)")
        } catch {
            Glibc.close(fd)
            throw error
        }
        connection = ControlConnection(descriptor: fd)
        try connection.send(.hello(client: RunMetadata.version))
        switch try connection.receive(timeoutSeconds: timeoutSeconds, accepted: ["welcome", "error"]) {
        case let .welcome(info)?: server = info
        case let .error(_, message)?: throw IPCError.setup("the server at \(target) refused the session: \(message)")
        default: throw IPCError.setup("the server at \(target) closed the connection during hello")
        }
    }

    deinit { close() }

    /// Says goodbye and closes the connection (the server then waits for its next client).
    public func close() {
        try? connection.send(.bye)
        connection.close()
    }

    /// The suite's pair runner for this server.
    public var pairs: PairRunner { { [unowned self] cell, task, limits in [try self.runPair(cell, task: task, limits: limits)] } }

    /// One repetition: the consumer on the server, the producer here, synchronised over the control
    /// connection as a local pair is over its pipes.
    public func runPair(_ cell: Cell, task: WorkerTask, limits: PairLimits) throws -> ProcessPair.Results {
        lastCell += 1
        let id = lastCell
        let secret = PeerSecret.make()
        try connection.send(.start(cell: id, request: CellRequest(
            task: task, consumerCPU: cell.placement.consumerCPU,
            setupTimeoutSeconds: limits.setupTimeoutSeconds, cellTimeoutSeconds: limits.cellTimeoutSeconds, peerSecret: secret)))

        let setup = Deadline(seconds: limits.setupTimeoutSeconds)
        let port = try reply(to: id, by: setup, during: "consumer set-up") { if case let .bound(_, port) = $0 { port } else { nil } }

        var producerTask = task
        producerTask.role = .producer
        producerTask.cpu = cell.placement.producerCPU
        producerTask.published = [NetworkParameters.port: String(port), NetworkParameters.peerAddress: serverAddress]
        let producer = try WorkerProcess(role: .producer, executable: limits.workerExecutable, task: producerTask, inherited: [], peerSecret: secret)
        defer { producer.terminate() }

        // Barrier: both endpoints open and both pinned before either starts its loop.
        guard case .ready = try EventWaiter.next(from: [producer], deadline: setup, phase: "connection set-up").1 else {
            throw IPCError.worker("producer sent an unexpected event before ready")
        }
        _ = try reply(to: id, by: setup, during: "connection set-up") { if case let .ready(_, cpu) = $0 { cpu } else { nil } }
        try connection.send(.go(cell: id))
        try producer.sendGo()

        let measuring = Deadline(seconds: Double(task.durationNanoseconds) / 1e9 + limits.cellTimeoutSeconds)
        guard case let .finished(producerResult) = try EventWaiter.next(from: [producer], deadline: measuring, phase: "the timed loop").1 else {
            throw IPCError.worker("producer sent an unexpected event instead of its result")
        }
        let consumerResult = try reply(to: id, by: measuring, during: "the timed loop") {
            if case let .finished(_, result) = $0 { result } else { nil }
        }
        let ending = producer.reap(timeoutNanoseconds: 2_000_000_000)
        guard ending == .success else { throw IPCError.worker("producer \(ending) after reporting its result") }
        return ProcessPair.Results(producer: producerResult, consumer: consumerResult)
    }

    /// The server's next reply about repetition `id`, as `extract` takes it apart. Replies about
    /// earlier, abandoned repetitions are skipped; an error about this one (or the session) is thrown.
    private func reply<Value>(to id: Int, by deadline: Deadline, during phase: String, _ extract: (ControlMessage) -> Value?) throws -> Value {
        while true {
            let message: ControlMessage?
            do {
                message = try connection.receive(deadline: deadline, accepted: ["bound", "ready", "finished", "error"])
            } catch let IPCError.timeout(text) {
                throw IPCError.timeout("timeout: the server did not answer during \(phase): \(text)")
            }
            guard let message else { throw IPCError.peerClosed("the server closed the control connection during \(phase)") }
            switch message {
            case let .error(cell, text) where cell == nil || cell == id:
                throw IPCError.worker("server: \(DisplayText.printable(text))")
            case .error(let cell?, _) where cell < id, .bound(let cell, _) where cell < id,
                 .ready(let cell, _) where cell < id, .finished(let cell, _) where cell < id:
                continue
            default:
                if let value = extract(message) { return value }
                throw IPCError.worker("the server sent '\(message.name)' during \(phase) of repetition \(id)")
            }
        }
    }

    /// A numeric IPv4 address for `host` (itself if already numeric).
    static func resolve(_ host: String) throws -> String {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        defer { if status == 0 { freeaddrinfo(list) } }
        guard status == 0, let first = list, let socketAddress = first.pointee.ai_addr else {
            throw IPCError.setup("cannot resolve '\(host)' to an IPv4 address: \(status == 0 ? "no IPv4 address" : String(cString: gai_strerror(status)))")
        }
        return socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { RemoteServer.describe($0.pointee).split(separator: ":")[0].description }
    }
}
