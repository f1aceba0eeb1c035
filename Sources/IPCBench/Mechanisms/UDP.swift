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
    public var losesMessages: Bool { true }
    public var crossesHosts: Bool { true }

    public func messageLimit() -> MessageLimit? {
        MessageLimit(bytes: 65_507, source: "IPv4 UDP payload: 65,535-byte datagram less 20-byte IP and 8-byte UDP headers")
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous()
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let (address, name) = try NetworkParameters.bindAddress(rendezvous)
        let fd = try Socket.make(AF_INET, Int32(SOCK_DGRAM.rawValue))
        let port: UInt16
        do {
            try Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, Self.receiveBufferRequest(options.variant), "SO_RCVBUF")
            try Socket.bind(fd, address, name)
            port = try Socket.localPort(fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        let size = options.messageBytes, mode = options.mode, secret = options.peerSecret
        return ImmediateListener(published: [NetworkParameters.port: String(port)]) {
            do {
                try UDPHandshake.awaitProducer(fd, secret: secret)
                return try LossyDatagramEndpoint(descriptor: fd, role: .consumer, mode: mode, maximumMessageBytes: size)
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let (address, name) = try NetworkParameters.peerAddress(published, mechanism: "UDP")
        let fd = try Socket.make(AF_INET, Int32(SOCK_DGRAM.rawValue))
        do {
            // Its own port, so the consumer can answer (latency) and acknowledge the end marker; on
            // loopback as before, any local address when the consumer is on another host.
            let local = published[NetworkParameters.peerAddress] == nil ? "127.0.0.1" : "0.0.0.0"
            try Socket.bind(fd, Socket.ipv4Address(local, port: 0), "\(local):0")
            try Socket.connect(fd, address, name)
            try UDPHandshake.proveToConsumer(
                fd, secret: options.peerSecret, retransmitMilliseconds: LossyDatagramEndpoint.retransmitMilliseconds,
                attempts: Int(LossyDatagramEndpoint.maximumAttempts))
            return try LossyDatagramEndpoint(descriptor: fd, role: .producer, mode: options.mode, maximumMessageBytes: options.messageBytes)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// The consumer's SO_RCVBUF request: as large as setsockopt allows (net.core.rmem_max, doubled by
    /// the kernel) so loopback streaming normally loses nothing, or the minimum for `small-rcvbuf`.
    static func receiveBufferRequest(_ variant: String) -> Int32 {
        if variant == smallBufferVariant { return 1 }
        return Int32(clamping: SystemFacts.readInt("/proc/sys/net/core/rmem_max") ?? 212_992)
    }
}

/// A UDP endpoint that survives loss without ever waiting forever:
/// - Latency: the producer re-sends a ping whose answer has not come within `retransmitMilliseconds`
///   (its attempt number rides in bits 48–54 of the sequence field); the consumer answers a repeated
///   ping again, drops stale copies, and counts each retransmission it sees as one lost datagram (the
///   ping or its answer; an answer slower than the timeout counts too). Round trips include the wait.
/// - Throughput: datagrams are never re-sent; gaps in the sequence numbers are the loss.
/// - End of stream (both modes): the producer repeats its end marker until the consumer acknowledges
///   it (a 16-byte datagram echoing the marker), up to `maximumAttempts` times; an ICMP "port
///   unreachable" (ECONNREFUSED) means the consumer has already finished.
/// - The consumer gives up with an error after `idleTimeoutSeconds` without any datagram.
final class LossyDatagramEndpoint: MessageEndpoint {
    static let retransmitMilliseconds = 20
    static let maximumAttempts: UInt64 = 127
    static let idleTimeoutSeconds = 5
    static let attemptShift: UInt64 = 48
    static let attemptMask: UInt64 = 0x7F << attemptShift

    private let descriptor: Int32
    private let role: Role
    private let mode: Mode
    private let sendBuffer: UnsafeMutableRawBufferPointer
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private let acknowledgement: UnsafeMutableRawBufferPointer
    private var lastSentBytes = 0

    // Consumer, latency mode: the ping last answered and the highest attempt of it seen.
    private var answeredAny = false
    private var lastAnswered: UInt64 = 0
    private var lastAttempt: UInt64 = 0
    private var retransmissionsSeen: UInt64 = 0

    // Test-only loss (see `injectLoss`): every nth datagram this side sends is not sent, nor the
    // first copy of an end marker or acknowledgement.
    private var dropInterval: UInt64 = 0
    private var sentCount: UInt64 = 0
    private var droppedFirstMarker = false
    private var droppedFirstAcknowledgement = false

    init(descriptor: Int32, role: Role, mode: Mode, maximumMessageBytes: Int) throws {
        self.descriptor = descriptor
        self.role = role
        self.mode = mode
        let timeout = role == .producer ? Self.retransmitMilliseconds : Self.idleTimeoutSeconds * 1000
        try Datagram.setTimeout(descriptor, SO_RCVTIMEO, milliseconds: timeout)
        sendBuffer = .allocate(byteCount: maximumMessageBytes, alignment: 64)
        receiveBuffer = .allocate(byteCount: max(maximumMessageBytes, MessageFormat.headerBytes), alignment: 64)
        acknowledgement = .allocate(byteCount: MessageFormat.headerBytes, alignment: 64)
        // Touch every page now so first-touch faults stay out of the timed loop.
        sendBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        receiveBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        acknowledgement.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
        acknowledgement.deallocate()
    }

    /// Every ping arrives in the end, so the harness's sequence check sees no gap: the
    /// retransmissions are the loss.
    var recoveredLosses: UInt64 { retransmissionsSeen }

    /// Test-only: loses every 499th datagram, and the first end marker and acknowledgement, so lost
    /// data, pings, answers, end markers and acknowledgements are all exercised.
    func injectLoss() { dropInterval = 499 }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = UnsafeMutableRawBufferPointer(rebasing: sendBuffer[0..<size])
        fill(message)
        lastSentBytes = size
        if role == .producer, MessageFormat.sequence(of: UnsafeRawBufferPointer(message)) & MessageFormat.endMarker != 0 {
            try sendEndMarker(UnsafeRawBufferPointer(message))
        } else {
            try transmit(UnsafeRawBufferPointer(message))
        }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        role == .producer ? try receiveAnswer(size: size, consume: consume) : try receivePing(size: size, consume: consume)
    }

    func close() {
        Glibc.close(descriptor)
    }

    // MARK: - Producer

    /// Waits for the answer to the ping in `sendBuffer`, re-sending it after each timeout.
    private func receiveAnswer(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[0..<size])
        let ping = MessageFormat.sequence(of: UnsafeRawBufferPointer(sendBuffer)) & ~Self.attemptMask
        var attempt: UInt64 = 0
        while true {
            let length = try Datagram.receive(descriptor, into: message)
            if length == Datagram.timedOut {
                attempt += 1
                guard attempt <= Self.maximumAttempts else {
                    throw IPCError.timeout("no answer to message \(ping) after \(Self.maximumAttempts) retransmissions \(Self.retransmitMilliseconds) ms apart")
                }
                sendBuffer.storeBytes(of: (ping | attempt << Self.attemptShift).littleEndian, toByteOffset: 0, as: UInt64.self)
                try transmit(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<lastSentBytes]))
                continue
            }
            let header = MessageFormat.sequence(of: UnsafeRawBufferPointer(message))
            // A late copy of the hello's acknowledgement.
            if length == MessageFormat.headerBytes, UDPHandshake.isHello(header) { continue }
            guard length == size else { throw Datagram.wrongLength(length, expected: size) }
            // A second answer to an earlier, re-sent ping: already counted.
            if header & ~MessageFormat.replyFlag < ping { continue }
            consume(UnsafeRawBufferPointer(message))
            return true
        }
    }

    /// Sends the end marker until the consumer acknowledges it (skipping late answers meanwhile).
    private func sendEndMarker(_ marker: UnsafeRawBufferPointer) throws {
        let sequence = MessageFormat.sequence(of: marker)
        for _ in 0..<Self.maximumAttempts {
            do {
                if dropInterval > 0, !droppedFirstMarker {
                    droppedFirstMarker = true
                } else {
                    try transmit(marker)
                }
                while true {
                    let length = try Datagram.receive(descriptor, into: receiveBuffer)
                    if length == Datagram.timedOut { break }
                    if length == MessageFormat.headerBytes,
                       MessageFormat.sequence(of: UnsafeRawBufferPointer(receiveBuffer)) == sequence {
                        return
                    }
                }
            } catch IPCError.system(_, ECONNREFUSED, _) {
                return
            }
        }
        // Unacknowledged: the consumer reports its idle timeout if it never saw a marker.
    }

    // MARK: - Consumer

    private func receivePing(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[0..<size])
        while true {
            let length = try Datagram.receive(descriptor, into: message)
            if length == Datagram.timedOut {
                throw IPCError.timeout("no datagram from the producer for \(Self.idleTimeoutSeconds) s")
            }
            let header = MessageFormat.sequence(of: UnsafeRawBufferPointer(message))
            if length != size || header & MessageFormat.endMarker != 0 {
                if UDPHandshake.isHello(header) {
                    // A late copy of the producer's hello (it asked again before our acknowledgement came).
                    try UDPHandshake.acknowledge(descriptor)
                    continue
                }
                guard length == size else { throw Datagram.wrongLength(length, expected: size) }
                try acknowledge(header)
            } else if mode == .latency {
                let attempt = (header & Self.attemptMask) >> Self.attemptShift
                let sequence = header & ~Self.attemptMask
                if answeredAny, sequence <= lastAnswered {
                    if sequence == lastAnswered {
                        // The producer asked again: the answer (or an earlier copy) was lost.
                        if attempt > lastAttempt {
                            retransmissionsSeen &+= attempt - lastAttempt
                            lastAttempt = attempt
                        }
                        try transmit(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<lastSentBytes]))
                    }
                    continue
                }
                // Earlier copies of this ping never arrived.
                retransmissionsSeen &+= attempt
                answeredAny = true
                lastAnswered = sequence
                lastAttempt = attempt
                if attempt != 0 { message.storeBytes(of: sequence.littleEndian, toByteOffset: 0, as: UInt64.self) }
            }
            consume(UnsafeRawBufferPointer(message))
            return true
        }
    }

    private func acknowledge(_ marker: UInt64) throws {
        if dropInterval > 0, !droppedFirstAcknowledgement {
            droppedFirstAcknowledgement = true
            return
        }
        MessageFormat.stamp(acknowledgement, sequence: marker, sentAt: 0)
        do {
            try transmit(UnsafeRawBufferPointer(acknowledgement))
        } catch IPCError.system(_, ECONNREFUSED, _) {
            // The producer already gave up waiting; nothing more to tell it.
        }
    }

    // MARK: - Both

    @inline(__always)
    private func transmit(_ datagram: UnsafeRawBufferPointer) throws {
        if dropInterval > 0 {
            sentCount &+= 1
            if sentCount % dropInterval == 0 { return }
        }
        try Datagram.send(descriptor, datagram)
    }
}
