import Foundation
import Glibc

/// `ipcbench run --remote`: the client's side of a session with `ipcbench serve`. Each repetition's
/// producer is a local worker process, as in a local pair, connected to the consumer the server
/// started; `runPair` is the `PairRunner` the suite uses instead of `ProcessPair`, and the client
/// is the `WorkerLauncher` that starts each repetition's consumer on the server.
public final class RemoteClient: WorkerLauncher {
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
        let socket = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        // On Linux SO_SNDTIMEO bounds connect() too: an unreachable host fails instead of hanging.
        var timeout = timeval(tv_sec: Int(timeoutSeconds.rounded(.up)), tv_usec: 0)
        setsockopt(socket.rawValue, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        do {
            try Socket.connect(socket.rawValue, Socket.ipv4Address(serverAddress, port: target.port), target.description)
        } catch let IPCError.system(_, code, _) {
            let hint = code == ECONNREFUSED ? " (is `ipcbench serve` running there, bound to that address?)" : ""
            throw IPCError.setup("cannot connect to the server at \(target): \(String(cString: strerror(code == EINPROGRESS ? ETIMEDOUT : code)))\(hint)")
        }
        connection = ControlConnection(descriptor: socket.release())
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

    /// One repetition: the consumer on the server, the producer here, started, synchronised and
    /// judged by the same `WorkerGroup` as a local pair.
    public func runPair(_ cell: Cell, task: WorkerTask, limits: PairLimits) throws -> ProcessPair.Results {
        let secret = PeerSecret.make()
        var group = WorkerGroup()
        var consumer = task
        consumer.cpu = cell.placement.consumerCPU
        group.consumers.append(.init(name: "consumer on \(address)", task: consumer, inherited: [], secret: secret, launcher: self))
        var producer = task
        producer.cpu = cell.placement.producerCPU
        group.producers.append(.init(name: "producer", task: producer, inherited: [], secret: secret))
        var unclosed: [Int32] = []
        let (consumers, producers) = try group.run(limits: limits, durationNanoseconds: task.durationNanoseconds, unclosed: &unclosed)
        return ProcessPair.Results(producer: producers[0], consumer: consumers[0])
    }

    /// Asks the server to start `task`'s consumer, as repetition number `lastCell + 1`.
    func launch(name: String, task: WorkerTask, inherited: [Int32], secret: String, limits: PairLimits) throws -> any PairWorker {
        lastCell += 1
        try connection.send(.start(cell: lastCell, request: CellRequest(
            task: task, consumerCPU: task.cpu,
            setupTimeoutSeconds: limits.setupTimeoutSeconds, cellTimeoutSeconds: limits.cellTimeoutSeconds, peerSecret: secret)))
        return RemoteConsumer(name: name, cell: lastCell, connection: connection, serverAddress: serverAddress, frameSeconds: limits.setupTimeoutSeconds)
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
