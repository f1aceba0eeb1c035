import Glibc

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
    private let waiter: ReadinessWaiter
    /// The producer's retransmission timer, or the consumer's idle limit.
    private let receiveTimeoutMilliseconds: Int
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer
    private let acknowledgement: PrivateBuffer
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

    /// Over a socket the endpoint owns from here on (closed if this fails).
    convenience init(socket: consuming OwnedDescriptor, role: Role, options: EndpointOptions) throws {
        try self.init(descriptor: socket.rawValue, role: role, options: options)
        _ = socket.release()
    }

    init(descriptor: Int32, role: Role, options: EndpointOptions) throws {
        self.descriptor = descriptor
        self.role = role
        mode = options.mode
        let maximumMessageBytes = options.messageBytes
        receiveTimeoutMilliseconds = role == .producer ? Self.retransmitMilliseconds : Self.idleTimeoutSeconds * 1000
        // Blocking: the socket's own receive timeout is the retransmission timer. Any other
        // strategy: O_NONBLOCK, and the waiter waits up to the timer's deadline (receiveDatagram).
        try Datagram.setTimeout(descriptor, SO_RCVTIMEO, milliseconds: receiveTimeoutMilliseconds)
        waiter = try ReadinessWaiter(options: options, readDescriptor: descriptor, writeDescriptor: descriptor)
        sendBuffer = PrivateBuffer(byteCount: maximumMessageBytes)
        receiveBuffer = PrivateBuffer(byteCount: max(maximumMessageBytes, MessageFormat.headerBytes))
        acknowledgement = PrivateBuffer(byteCount: MessageFormat.headerBytes)
    }

    /// Every ping arrives in the end, so the harness's sequence check sees no gap: the
    /// retransmissions are the loss.
    var recoveredLosses: UInt64 { retransmissionsSeen }

    /// Test-only: loses every 499th datagram, and the first end marker and acknowledgement, so lost
    /// data, pings, answers, end markers and acknowledgements are all exercised.
    func injectLoss() { dropInterval = 499 }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
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
        waiter.close()
        Glibc.close(descriptor)
    }

    // MARK: - Producer

    /// Waits for the answer to the ping in `sendBuffer`, re-sending it after each timeout.
    private func receiveAnswer(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = receiveBuffer.prefix(size)
        let ping = MessageFormat.sequence(of: UnsafeRawBufferPointer(sendBuffer.bytes)) & ~Self.attemptMask
        var attempt: UInt64 = 0
        while true {
            let length = try receiveDatagram(into: message)
            if length == Datagram.timedOut {
                attempt += 1
                guard attempt <= Self.maximumAttempts else {
                    throw IPCError.timeout("no answer to message \(ping) after \(Self.maximumAttempts) retransmissions \(Self.retransmitMilliseconds) ms apart")
                }
                sendBuffer.bytes.storeBytes(of: (ping | attempt << Self.attemptShift).littleEndian, toByteOffset: 0, as: UInt64.self)
                try transmit(UnsafeRawBufferPointer(rebasing: sendBuffer.bytes[0..<lastSentBytes]))
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
                    let length = try receiveDatagram(into: receiveBuffer.bytes)
                    if length == Datagram.timedOut { break }
                    if length == MessageFormat.headerBytes,
                       MessageFormat.sequence(of: UnsafeRawBufferPointer(receiveBuffer.bytes)) == sequence {
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
        let message = receiveBuffer.prefix(size)
        while true {
            let length = try receiveDatagram(into: message)
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
                        try transmit(UnsafeRawBufferPointer(rebasing: sendBuffer.bytes[0..<lastSentBytes]))
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
        MessageFormat.stamp(acknowledgement.bytes, sequence: marker, sentAt: 0)
        do {
            try transmit(UnsafeRawBufferPointer(acknowledgement.bytes))
        } catch IPCError.system(_, ECONNREFUSED, _) {
            // The producer already gave up waiting; nothing more to tell it.
        }
    }

    // MARK: - Both

    /// One datagram's real length, or `Datagram.timedOut` once `receiveTimeoutMilliseconds` pass
    /// without one: the socket's receive timeout when blocking, the waiter's deadline otherwise.
    @inline(__always)
    private func receiveDatagram(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let length = try Datagram.receive(descriptor, into: buffer)
        if length != Datagram.timedOut || waiter.strategy == .block { return length }
        let deadline = MonotonicClock.now() &+ UInt64(receiveTimeoutMilliseconds) * 1_000_000
        while try waiter.waitReadable(descriptor, until: deadline) {
            let length = try Datagram.receive(descriptor, into: buffer)
            if length != Datagram.timedOut { return length }
        }
        return Datagram.timedOut
    }

    @inline(__always)
    private func transmit(_ datagram: UnsafeRawBufferPointer) throws {
        if dropInterval > 0 {
            sentCount &+= 1
            if sentCount % dropInterval == 0 { return }
        }
        try Datagram.send(descriptor, datagram, waiter: waiter)
    }
}
