import Glibc
import SystemPackage

/// `--clients` over UDP: one socket bound to loopback serves every client. Each client proves itself
/// with the cell's secret (the usual hello, UDPHandshake); its address is then its route, and a
/// datagram from any other address is dropped. Loss is handled as for a pair (LossyDatagramEndpoint,
/// which the clients use unchanged): a client re-sends an unanswered ping and the server answers a
/// repeated ping again from that client's own reply buffer, counting each retransmission as one lost
/// datagram; end markers are acknowledged, repeats included; streaming gaps are the harness's loss.
extension UDPMechanism: FanInMechanism {
    public var fanInShape: String { "one socket; each client proves itself with the secret, then its address is its route (recvfrom/sendto)" }

    public func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous {
        FanInRendezvous(server: Rendezvous(), clients: Array(repeating: Rendezvous(), count: clients))
    }

    public func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener {
        let (fd, port) = try Self.boundSocket(rendezvous, options: options)
        return UDPServerListener(descriptor: fd, clients: clients, options: options, published: [NetworkParameters.port: String(port)])
    }
}

struct UDPServerListener: ServerListener {
    let descriptor: Int32
    let clients: Int
    let options: EndpointOptions
    let published: [String: String]

    /// Waits until `clients` distinct senders have proved themselves with the secret.
    func accept() throws -> any ServerEndpoint {
        do {
            let expected = UDPHandshake.hello(options.peerSecret)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: expected.count + 1, alignment: 8)
            defer { buffer.deallocate() }
            var addresses: [sockaddr_in] = []
            var dropped = 0
            let deadline = MonotonicClock.now() + UInt64(UDPHandshake.consumerSeconds) * 1_000_000_000
            try Datagram.setTimeout(descriptor, SO_RCVTIMEO, milliseconds: 100)
            while addresses.count < clients {
                guard MonotonicClock.now() < deadline else {
                    throw IPCError.timeout(
                        "\(addresses.count) of \(clients) UDP clients proved themselves within \(UDPHandshake.consumerSeconds) s (\(dropped) datagrams from others dropped)")
                }
                var sender = sockaddr_in()
                let length = try UDPServerEndpoint.receive(descriptor, into: buffer, from: &sender)
                if length == Datagram.timedOut { continue }
                guard length == expected.count, expected.elementsEqual(UnsafeRawBufferPointer(rebasing: buffer[0..<length])) else {
                    dropped += 1
                    continue
                }
                if !addresses.contains(where: { UDPServerEndpoint.same($0, sender) }) { addresses.append(sender) }
                try UDPServerEndpoint.send(descriptor, UnsafeRawBufferPointer(rebasing: buffer[0..<MessageFormat.headerBytes]), to: sender)
            }
            return try UDPServerEndpoint(descriptor: descriptor, clients: addresses, options: options)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
    }
}

final class UDPServerEndpoint: ServerEndpoint {
    private let descriptor: Int32
    private let clients: [sockaddr_in]
    private let latency: Bool
    private let receiveBuffer: PrivateBuffer
    /// Each client's last answer (a repeated ping gets it again) and end-marker acknowledgement.
    private let replies: PrivateBuffer
    private let acknowledgement: PrivateBuffer
    private let stride: Int
    // Per client, latency mode: the ping last answered and the highest attempt of it seen.
    private let lastAnswered: UnsafeMutablePointer<UInt64>
    private let lastAttempt: UnsafeMutablePointer<UInt64>
    private let answeredAny: UnsafeMutablePointer<Bool>
    private let ended: UnsafeMutablePointer<Bool>
    private var retransmissionsSeen: UInt64 = 0

    init(descriptor: Int32, clients: [sockaddr_in], options: EndpointOptions) throws {
        self.descriptor = descriptor
        self.clients = clients
        latency = options.mode == .latency
        try Datagram.setTimeout(descriptor, SO_RCVTIMEO, milliseconds: LossyDatagramEndpoint.idleTimeoutSeconds * 1000)
        stride = (max(options.messageBytes, MessageFormat.headerBytes) + 63) / 64 * 64
        receiveBuffer = PrivateBuffer(byteCount: stride)
        replies = PrivateBuffer(byteCount: stride * clients.count)
        acknowledgement = PrivateBuffer(byteCount: MessageFormat.headerBytes)
        lastAnswered = .allocate(capacity: clients.count)
        lastAnswered.initialize(repeating: 0, count: clients.count)
        lastAttempt = .allocate(capacity: clients.count)
        lastAttempt.initialize(repeating: 0, count: clients.count)
        answeredAny = .allocate(capacity: clients.count)
        answeredAny.initialize(repeating: false, count: clients.count)
        ended = .allocate(capacity: clients.count)
        ended.initialize(repeating: false, count: clients.count)
    }

    deinit {
        lastAnswered.deallocate()
        lastAttempt.deallocate()
        answeredAny.deallocate()
        ended.deallocate()
    }

    var recoveredLosses: UInt64 { retransmissionsSeen }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Int? {
        let message = receiveBuffer.prefix(size)
        while true {
            var sender = sockaddr_in()
            let length = try Self.receive(descriptor, into: receiveBuffer.bytes, from: &sender)
            if length == Datagram.timedOut {
                throw IPCError.timeout("no datagram from any UDP client for \(LossyDatagramEndpoint.idleTimeoutSeconds) s")
            }
            guard let route = clients.firstIndex(where: { Self.same($0, sender) }) else { continue }
            let header = MessageFormat.sequence(of: UnsafeRawBufferPointer(message))
            if UDPHandshake.isHello(header) {
                // A late copy of this client's hello: acknowledge again.
                try Self.send(descriptor, UnsafeRawBufferPointer(rebasing: receiveBuffer.bytes[0..<MessageFormat.headerBytes]), to: sender)
                continue
            }
            guard length == size else { throw Datagram.wrongLength(length, expected: size) }
            if header & MessageFormat.endMarker != 0 {
                MessageFormat.stamp(acknowledgement.bytes, sequence: header, sentAt: 0)
                try Self.send(descriptor, UnsafeRawBufferPointer(acknowledgement.bytes), to: sender)
                // The client repeats its marker until acknowledged: the harness sees it once.
                if ended[route] { continue }
                ended[route] = true
            } else if latency {
                let attempt = (header & LossyDatagramEndpoint.attemptMask) >> LossyDatagramEndpoint.attemptShift
                let sequence = header & ~LossyDatagramEndpoint.attemptMask
                if answeredAny[route], sequence <= lastAnswered[route] {
                    if sequence == lastAnswered[route] {
                        // The client asked again: the answer (or an earlier copy of the ping) was lost.
                        if attempt > lastAttempt[route] {
                            retransmissionsSeen &+= attempt - lastAttempt[route]
                            lastAttempt[route] = attempt
                        }
                        try Self.send(descriptor, UnsafeRawBufferPointer(rebasing: replies.bytes[(route * stride)..<(route * stride + size)]), to: sender)
                    }
                    continue
                }
                retransmissionsSeen &+= attempt
                answeredAny[route] = true
                lastAnswered[route] = sequence
                lastAttempt[route] = attempt
                if attempt != 0 { message.storeBytes(of: sequence.littleEndian, toByteOffset: 0, as: UInt64.self) }
            }
            consume(UnsafeRawBufferPointer(message))
            return route
        }
    }

    func send(to route: Int, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let reply = UnsafeMutableRawBufferPointer(rebasing: replies.bytes[(route * stride)..<(route * stride + size)])
        fill(reply)
        try Self.send(descriptor, UnsafeRawBufferPointer(reply), to: clients[route])
    }

    func close() {
        Glibc.close(descriptor)
    }

    static func same(_ a: sockaddr_in, _ b: sockaddr_in) -> Bool {
        a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr
    }

    /// One datagram's real length and its sender, or `Datagram.timedOut` after the socket's timeout.
    @inline(__always)
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, from sender: inout sockaddr_in) throws -> Int {
        do throws(Errno) {
            return try SystemCall.retrying {
                var senderLength = socklen_t(MemoryLayout<sockaddr_in>.size)
                return withUnsafeMutablePointer(to: &sender) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC), $0, &senderLength)
                    }
                }
            }
        } catch .wouldBlock {
            return Datagram.timedOut
        } catch {
            throw IPCError.system("recvfrom", error)
        }
    }

    /// Sends one datagram to `address`; a client already gone (ECONNREFUSED) is not an error here.
    @inline(__always)
    static func send(_ fd: Int32, _ datagram: UnsafeRawBufferPointer, to address: sockaddr_in) throws {
        var address = address
        let sent: Int
        do throws(Errno) {
            sent = try SystemCall.retrying {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, datagram.baseAddress, datagram.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        } catch .connectionRefused {
            return
        } catch {
            throw IPCError.system("sendto", error, "\(datagram.count)-byte datagram")
        }
        guard sent == datagram.count else { throw IPCError.worker("sendto took \(sent) bytes of a \(datagram.count)-byte datagram") }
    }
}
