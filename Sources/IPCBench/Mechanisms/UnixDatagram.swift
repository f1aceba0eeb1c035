import Glibc

/// UNIX domain datagram sockets, one message per datagram, in two kinds:
/// - `unix-dgram` (SOCK_DGRAM): the consumer binds a path in the cell's private directory, the
///   producer binds its own path there too (so the consumer can answer) and connects to the
///   consumer's by name; the consumer connects back to the sender of the first datagram.
/// - `unix-seqpacket` (SOCK_SEQPACKET): listen/accept by path like the stream socket, but the
///   kernel keeps record boundaries.
/// Both are reliable: a full receive queue (net.unix.max_dgram_qlen datagrams) blocks the sender.
public struct UnixDatagramMechanism: Mechanism {
    public enum Kind: Sendable {
        case datagram, sequencedPacket

        var socketType: Int32 {
            self == .datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_SEQPACKET.rawValue)
        }
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    public var id: String { kind == .datagram ? "unix-dgram" : "unix-seqpacket" }
    public var summary: String {
        kind == .datagram
            ? "UNIX domain SOCK_DGRAM socket: both sides bind a path, one datagram per message"
            : "UNIX domain SOCK_SEQPACKET socket, bound to a path, connected by name, one record per message"
    }

    public func variants(for mode: Mode) -> [String] { ["send/recv"] }
    /// User buffer → kernel skb → user buffer.
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] {
        WaitStrategy.allCases.filter { $0 != .sigio && !(kind == .datagram && $0.usesCompletionRing) }
    }

    public func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        // Found by the tests: a sigio producer stalled for good once the consumer's queue filled.
        if wait == .sigio {
            return "the kernel raises no SIGIO when a full UNIX datagram receive queue drains (the sender is woken through the peer's wait queue only), so a sigio producer would wait for ever"
        }
        // Found by the tests too, and still seen now and then with IORING_RECVSEND_POLL_FIRST.
        if kind == .datagram, wait.usesCompletionRing {
            return "on this kernel an io_uring send to a full UNIX datagram queue can be retried as an empty datagram (scripts/c/uring_dgram_send_retry.c), which would corrupt the stream"
        }
        return nil
    }

    public func messageLimit() -> MessageLimit? {
        kind == .datagram ? Self.datagramLimit : Self.sequencedPacketLimit
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous(parameters: ["path": workspace + "/consumer.sock", "producerPath": workspace + "/producer.sock"])
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let path = try rendezvous.require("path")
        let socket = try Socket.make(AF_UNIX, kind.socketType)
        try Self.enlargeSendBuffer(socket.rawValue)
        try Self.bindPrivately(socket.rawValue, path)
        if kind == .sequencedPacket { try Socket.listen(socket.rawValue) }
        let fd = socket.release()
        if kind == .sequencedPacket {
            return SequencedPacketListener(descriptor: fd, options: options)
        }
        return ImmediateListener {
            try DatagramEndpoint(descriptor: fd, options: options, connectsToFirstSender: true, zeroLengthMeansClosed: false)
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let path = try rendezvous.require("path")
        let socket = try Socket.make(AF_UNIX, kind.socketType)
        try Self.enlargeSendBuffer(socket.rawValue)
        if kind == .datagram {
            // Bound so the consumer has an address to answer to.
            try Self.bindPrivately(socket.rawValue, try rendezvous.require("producerPath"))
        }
        try Socket.connect(socket.rawValue, Socket.unixAddress(path), path)
        return try DatagramEndpoint(socket: socket, options: options, connectsToFirstSender: false, zeroLengthMeansClosed: kind == .sequencedPacket)
    }

    // MARK: - Buffers and limits

    static let sendBufferMaximumPath = "/proc/sys/net/core/wmem_max"
    /// unix_dgram_sendmsg refuses (EMSGSIZE) a datagram longer than the send buffer less this.
    static let sendBufferOverhead = 32

    /// A datagram must fit in the sender's buffer, so both sides raise SO_SNDBUF as far as
    /// setsockopt allows (net.core.wmem_max; the kernel doubles it) and every size up to
    /// `messageLimit()` fits. It only caps bytes in flight; nothing is allocated up front.
    /// SO_RCVBUF is left alone: AF_UNIX datagram queues are bounded by net.unix.max_dgram_qlen.
    static func enlargeSendBuffer(_ fd: Int32) throws {
        guard let maximum = SystemFacts.readInt(sendBufferMaximumPath) else { return }
        try Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: maximum), "SO_SNDBUF")
    }

    /// Binds with the socket file created 0600 (Linux takes the file's mode from the socket inode).
    static func bindPrivately(_ fd: Int32, _ path: String) throws {
        try Socket.bindPrivately(fd, path: path)
    }

    static let datagramLimit = probeLimit(Int32(SOCK_DGRAM.rawValue))
    static let sequencedPacketLimit = probeLimit(Int32(SOCK_SEQPACKET.rawValue))

    /// The largest datagram this system carries, found by trying it (once per process): the send
    /// buffer bounds it (len > sk_sndbuf − 32 is EMSGSIZE), and above ~4 MiB the kernel's largest
    /// skb allocation does (ENOBUFS), which /proc does not state.
    static func probeLimit(_ type: Int32) -> MessageLimit? {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else { return nil }
        defer {
            Glibc.close(pair[0])
            Glibc.close(pair[1])
        }
        try? enlargeSendBuffer(pair[0])
        guard let sendBuffer = Datagram.option(pair[0], SOL_SOCKET, SO_SNDBUF) else { return nil }
        let bound = Int(sendBuffer) - sendBufferOverhead
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: bound, alignment: 4096)
        defer { scratch.deallocate() }

        func carries(_ size: Int) -> Bool {
            guard Glibc.send(pair[0], scratch, size, Int32(MSG_DONTWAIT)) == size else { return false }
            // Dequeue it (a 1-byte read of a datagram discards the rest) so the next try starts empty.
            var byte: UInt8 = 0
            _ = recv(pair[1], &byte, 1, Int32(MSG_TRUNC | MSG_DONTWAIT))
            return true
        }

        let origin = SystemFacts.readInt(sendBufferMaximumPath).map { "SO_SNDBUF = net.core.wmem_max \($0), doubled: \(sendBuffer)" }
            ?? "SO_SNDBUF \(sendBuffer)"
        if carries(bound) {
            return MessageLimit(bytes: bound, source: "send buffer less \(sendBufferOverhead) bytes (\(origin))")
        }
        var carried = 0, refused = bound
        while refused - carried > 1 {
            let middle = carried + (refused - carried) / 2
            if carries(middle) { carried = middle } else { refused = middle }
        }
        return MessageLimit(
            bytes: carried,
            source: "probed: largest datagram the kernel allocates, ENOBUFS above (\(origin), would allow \(bound))")
    }
}

/// A listening SOCK_SEQPACKET socket whose accept() completes the consumer's endpoint.
struct SequencedPacketListener: ConsumerListener {
    let descriptor: Int32
    let options: EndpointOptions
    var published: [String: String] { [:] }

    func accept() throws -> any MessageEndpoint {
        defer { Glibc.close(descriptor) }
        let connection = try Socket.accept(descriptor)
        try UnixDatagramMechanism.enlargeSendBuffer(connection.rawValue)
        return try DatagramEndpoint(socket: connection, options: options, connectsToFirstSender: false, zeroLengthMeansClosed: true)
    }
}
