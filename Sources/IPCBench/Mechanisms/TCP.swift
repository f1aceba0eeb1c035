import Glibc

/// TCP over the loopback interface. The consumer listens on 127.0.0.1 with a port the kernel picks
/// and publishes it; the producer connects to that address. Latency cells set TCP_NODELAY on both
/// ends so small messages are not held back by Nagle's algorithm. Under `ipcbench serve` the consumer
/// binds the server's address (and data port, if fixed) instead, and the producer connects across hosts.
/// Any local user can connect to the port, so on one host the producer first sends the cell's secret
/// and the consumer accepts only a connection that does (SocketListener); strangers are closed.
public struct TCPMechanism: FanInMechanism {
    public init() {}
    public let id = "tcp"
    public let summary = "TCP over 127.0.0.1 (TCP_NODELAY in latency mode)"

    /// Nagle's algorithm would hold back ping-pong messages; streaming keeps the kernel default.
    public func variants(for mode: Mode) -> [String] { mode == .latency ? ["nodelay"] : ["default"] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.allCases }
    public var crossesHosts: Bool { true }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous()
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let (address, name) = try NetworkParameters.bindAddress(rendezvous)
        let socket = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        // A fixed data port is reused cell after cell; the previous cell's connection may be in TIME_WAIT.
        if address.sin_port != 0 { try Socket.setOption(socket.rawValue, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR") }
        try Socket.bind(socket.rawValue, address, name)
        try Socket.listen(socket.rawValue)
        let port = try Socket.localPort(socket.rawValue)
        return SocketListener(
            descriptor: socket.release(), published: [NetworkParameters.port: String(port)],
            configure: { try Self.configure($0, options) }, options: options, peerSecret: options.peerSecret)
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let (address, name) = try NetworkParameters.peerAddress(published, mechanism: "TCP")
        let socket = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        try Socket.connect(socket.rawValue, address, name)
        try SocketListener.prove(socket.rawValue, options.peerSecret)
        try Self.configure(socket.rawValue, options)
        return try StreamEndpoint(socket: socket, options: options)
    }

    public let fanInShape = "one listening port; the server accepts a connection per client (each proves itself with the cell's secret) and multiplexes them with epoll"

    public func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous {
        FanInRendezvous(server: Rendezvous(), clients: Array(repeating: Rendezvous(), count: clients))
    }

    public func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener {
        let (address, name) = try NetworkParameters.bindAddress(rendezvous)
        let socket = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        try Socket.bind(socket.rawValue, address, name)
        try Socket.listen(socket.rawValue, backlog: Int32(clients))
        let port = try Socket.localPort(socket.rawValue)
        return StreamServerListener(
            descriptor: socket.release(), clients: clients, options: options, published: [NetworkParameters.port: String(port)],
            peerSecret: options.peerSecret, configure: { try Self.configure($0, options) })
    }

    private static func configure(_ fd: Int32, _ options: EndpointOptions) throws {
        if options.mode == .latency {
            try Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY")
        }
    }
}
