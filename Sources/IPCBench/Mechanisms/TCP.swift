import Glibc

/// TCP over the loopback interface. The consumer listens on 127.0.0.1 with a port the kernel picks
/// and publishes it; the producer connects to that address. Latency cells set TCP_NODELAY on both
/// ends so small messages are not held back by Nagle's algorithm.
public struct TCPMechanism: Mechanism {
    public init() {}
    public let id = "tcp"
    public let summary = "TCP over 127.0.0.1 (TCP_NODELAY in latency mode)"

    /// Nagle's algorithm would hold back ping-pong messages; streaming keeps the kernel default.
    public func variants(for mode: Mode) -> [String] { mode == .latency ? ["nodelay"] : ["default"] }
    public func copies(for variant: String) -> Int { 2 }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous()
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let fd = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        do {
            try Socket.bind(fd, Socket.loopbackAddress(port: 0), "127.0.0.1:0")
            try Socket.listen(fd)
            let port = try Socket.localPort(fd)
            return SocketListener(
                descriptor: fd, published: ["port": String(port)],
                configure: { try Self.configure($0, options) }, messageBytes: options.messageBytes)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        guard let portText = published["port"], let port = UInt16(portText) else {
            throw IPCError.setup("the consumer did not publish a TCP port")
        }
        let fd = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        do {
            try Socket.connect(fd, Socket.loopbackAddress(port: port), "127.0.0.1:\(port)")
            try Self.configure(fd, options)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return StreamEndpoint(readDescriptor: fd, writeDescriptor: fd, maximumMessageBytes: options.messageBytes)
    }

    private static func configure(_ fd: Int32, _ options: EndpointOptions) throws {
        if options.mode == .latency {
            try Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY")
        }
    }
}
