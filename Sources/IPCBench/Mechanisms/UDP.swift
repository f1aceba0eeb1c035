import Glibc

/// UDP over the loopback interface, one message per datagram. The consumer binds 127.0.0.1 with a
/// port the kernel picks and publishes it; the producer binds its own ephemeral port, connects, and
/// proves itself with the cell's secret before the first message (UDPHandshake), after which the
/// consumer's socket is connected to it and other senders' datagrams never reach the cell.
///
/// UDP may drop datagrams (on loopback: when the receiver's buffer is full), so losses are reported
/// in the `lost` column instead of failing the cell, and `LossyDatagramEndpoint` makes sure no side
/// waits forever for a datagram that was lost.
public struct UDPMechanism: Mechanism {
    public init() {}
    public let id = "udp"
    public let summary = "UDP over 127.0.0.1, one datagram per message; losses reported, lost pings re-sent"

    static let defaultVariant = "send/recv"
    /// The consumer's receive buffer at the kernel minimum: shows what heavy loss looks like.
    static let smallBufferVariant = "small-rcvbuf"

    public func variants(for mode: Mode) -> [String] { [Self.defaultVariant] }
    public func optionalVariants(for mode: Mode) -> [String] { [Self.smallBufferVariant] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.readinessBased }
    public var completionRingUnavailableReason: String { "its retransmission timer needs receives bounded by a deadline, which io_uring reads here do not have (no linked timeouts)" }
    public var losesMessages: Bool { true }
    public var crossesHosts: Bool { true }

    public func messageLimit() -> MessageLimit? {
        MessageLimit(bytes: 65_507, source: "IPv4 UDP payload: 65,535-byte datagram less 20-byte IP and 8-byte UDP headers")
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous()
    }

    /// The consumer's (or fan-in server's) socket: bound, its receive buffer sized for the variant.
    static func boundSocket(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> (descriptor: Int32, port: UInt16) {
        let (address, name) = try NetworkParameters.bindAddress(rendezvous)
        let socket = try Socket.make(AF_INET, Int32(SOCK_DGRAM.rawValue))
        try Socket.setOption(socket.rawValue, SOL_SOCKET, SO_RCVBUF, receiveBufferRequest(options.variant), "SO_RCVBUF")
        try Socket.bind(socket.rawValue, address, name)
        let port = try Socket.localPort(socket.rawValue)
        return (socket.release(), port)
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let (fd, port) = try Self.boundSocket(rendezvous, options: options)
        return ImmediateListener(published: [NetworkParameters.port: String(port)]) {
            do {
                try UDPHandshake.awaitProducer(fd, secret: options.peerSecret)
                return try LossyDatagramEndpoint(descriptor: fd, role: .consumer, options: options)
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let (address, name) = try NetworkParameters.peerAddress(published, mechanism: "UDP")
        let socket = try Socket.make(AF_INET, Int32(SOCK_DGRAM.rawValue))
        // Its own port, so the consumer can answer (latency) and acknowledge the end marker; on
        // loopback as before, any local address when the consumer is on another host.
        let local = published[NetworkParameters.peerAddress] == nil ? "127.0.0.1" : "0.0.0.0"
        try Socket.bind(socket.rawValue, Socket.ipv4Address(local, port: 0), "\(local):0")
        try Socket.connect(socket.rawValue, address, name)
        try UDPHandshake.proveToConsumer(
            socket.rawValue, secret: options.peerSecret, retransmitMilliseconds: LossyDatagramEndpoint.retransmitMilliseconds,
            attempts: Int(LossyDatagramEndpoint.maximumAttempts))
        return try LossyDatagramEndpoint(socket: socket, role: .producer, options: options)
    }

    /// The consumer's SO_RCVBUF request: as large as setsockopt allows (net.core.rmem_max, doubled by
    /// the kernel) so loopback streaming normally loses nothing, or the minimum for `small-rcvbuf`.
    static func receiveBufferRequest(_ variant: String) -> Int32 {
        if variant == smallBufferVariant { return 1 }
        return Int32(clamping: SystemFacts.readInt("/proc/sys/net/core/rmem_max") ?? 212_992)
    }
}
