import Glibc

/// UNIX domain stream socket bound to a path in the cell's private directory; the producer
/// connects by that path.
public struct UnixStreamMechanism: FanInMechanism, FanOutMechanism {
    public init() {}
    public let id = "unix-stream"
    public let summary = "UNIX domain SOCK_STREAM socket, bound to a path, connected by name"

    public func variants(for mode: Mode) -> [String] { ["write/read"] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.allCases }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous(parameters: ["path": workspace + "/consumer.sock"])
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let path = try rendezvous.require("path")
        let fd = try Socket.listeningUnixStream(path: path)
        return SocketListener(descriptor: fd, published: [:], configure: { _ in }, options: options)
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let path = try rendezvous.require("path")
        let socket = try Socket.make(AF_UNIX, Int32(SOCK_STREAM.rawValue))
        try Socket.connect(socket.rawValue, Socket.unixAddress(path), path)
        return try StreamEndpoint(socket: socket, options: options)
    }

    public let fanInShape = "one listening socket; the server accepts a connection per client and multiplexes them with epoll"

    public func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous {
        let rendezvous = try prepare(workspace: workspace, options: options)
        return FanInRendezvous(server: rendezvous, clients: Array(repeating: rendezvous, count: clients))
    }

    public func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener {
        let fd = try Socket.listeningUnixStream(path: try rendezvous.require("path"), backlog: Int32(clients))
        return StreamServerListener(descriptor: fd, clients: clients, options: options)
    }

    public let fanOutShape = "a socket per reader, each listening on its own path; the producer builds each message once and writes it to every connection"

    public func fanOutVariants(for mode: Mode) -> [String] { variants(for: mode) }

    public func prepareFanOut(workspace: String, readers: Int, options: EndpointOptions) throws -> FanOutRendezvous {
        let paths = (0..<readers).map { "\(workspace)/reader-\($0).sock" }
        var producer = Rendezvous()
        for (index, path) in paths.enumerated() { producer.parameters["path-\(index)"] = path }
        return FanOutRendezvous(producer: producer, readers: paths.map { Rendezvous(parameters: ["path": $0]) })
    }

    public func connectToReaders(_ rendezvous: Rendezvous, readers: Int, options: EndpointOptions) throws -> any MessageEndpoint {
        var connections: [Int32] = []
        do {
            for index in 0..<readers {
                let path = try rendezvous.require("path-\(index)")
                let fd = try Socket.make(AF_UNIX, Int32(SOCK_STREAM.rawValue)).release()
                connections.append(fd)
                try Socket.connect(fd, Socket.unixAddress(path), path)
            }
        } catch {
            connections.forEach { Glibc.close($0) }
            throw error
        }
        return StreamFanOutEndpoint(connections: connections, options: options)
    }
}
