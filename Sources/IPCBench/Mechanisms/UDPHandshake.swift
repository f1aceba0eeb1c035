import Glibc
import SystemPackage

/// How a UDP cell's two workers find each other when any local user can send datagrams to the
/// consumer's port: the producer proves itself with the cell's secret (PeerSecret) before the first
/// message, and only then does the consumer connect its socket to the producer's address, so the
/// kernel drops every other sender's datagrams from then on.
///
/// - The producer sends a *hello* (a 16-byte header whose sequence is `helloSequence`, then the
///   secret) every `retransmitMilliseconds` until the consumer acknowledges it with a bare header.
/// - The consumer drops every datagram that is not a hello carrying the secret, connects to the
///   first one's sender, discards what strangers queued before that, and acknowledges.
/// - The producer sends no message before the acknowledgement, so nothing of the cell is discarded.
///   Late copies of a hello or of its acknowledgement are skipped by the endpoints (`isHello`).
enum UDPHandshake {
    /// End-marker bit (so the consumer's common path needs no extra test) plus bit 61, which no
    /// message, reply or end marker carries.
    static let helloSequence: UInt64 = MessageFormat.endMarker | 1 << 61
    /// How long a consumer waits for its producer's hello, however many strangers' datagrams arrive.
    static let consumerSeconds = 10

    static func isHello(_ header: UInt64) -> Bool { header == helloSequence }

    /// Consumer: returns once `descriptor` is connected to the producer that sent `secret`, with
    /// nothing from anyone else left in its queue. Returns the number of strangers' datagrams dropped.
    @discardableResult
    static func awaitProducer(_ descriptor: Int32, secret: String?) throws -> Int {
        let expected = hello(secret)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: expected.count + 1, alignment: 8)
        defer { buffer.deallocate() }
        let deadline = MonotonicClock.now() + UInt64(consumerSeconds) * 1_000_000_000
        var dropped = 0
        try Datagram.setTimeout(descriptor, SO_RCVTIMEO, milliseconds: 100)
        while true {
            guard MonotonicClock.now() < deadline else {
                throw IPCError.timeout(
                    "no UDP producer proved itself with the cell's secret within \(consumerSeconds) s (\(dropped) datagrams from others dropped)")
            }
            var sender = sockaddr_storage()
            var senderLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let length: Int
            do throws(Errno) {
                length = try SystemCall.once {
                    withUnsafeMutablePointer(to: &sender) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC), $0, &senderLength)
                        }
                    }
                }
            } catch .interrupted, .wouldBlock {
                continue  // the receive timeout: look at the deadline
            } catch {
                throw IPCError.system("recvfrom", error, "waiting for the UDP producer's hello")
            }
            guard length == expected.count, expected.elementsEqual(UnsafeRawBufferPointer(rebasing: buffer[0..<length])) else {
                dropped += 1
                continue
            }
            let connected = withUnsafePointer(to: &sender) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, senderLength) }
            }
            guard connected == 0 else { throw IPCError.lastSystemError("connect", "to the UDP producer") }
            // connect() filters new arrivals only: what strangers queued before it is still there.
            while recv(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT | MSG_TRUNC)) >= 0 {}
            try acknowledge(descriptor)
            return dropped
        }
    }

    /// Consumer: answers a hello (the first or a late copy).
    static func acknowledge(_ descriptor: Int32) throws {
        let sent = hello(nil).withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        // A producer that is already gone refuses (ECONNREFUSED); its copy was a late one anyway.
        if sent < 0, errno != ECONNREFUSED { throw IPCError.lastSystemError("send", "UDP hello acknowledgement") }
    }

    /// Producer, on a socket connected to the consumer: sends the hello until it is acknowledged.
    static func proveToConsumer(_ descriptor: Int32, secret: String?, retransmitMilliseconds: Int, attempts: Int) throws {
        let message = hello(secret)
        let answer = UnsafeMutableRawBufferPointer.allocate(byteCount: MessageFormat.headerBytes, alignment: 8)
        defer { answer.deallocate() }
        try Datagram.setTimeout(descriptor, SO_RCVTIMEO, milliseconds: retransmitMilliseconds)
        for _ in 0..<attempts {
            do {
                try message.withUnsafeBytes { try Datagram.send(descriptor, $0) }
                while true {
                    let length = try Datagram.receive(descriptor, into: answer)
                    if length == Datagram.timedOut { break }
                    if length == MessageFormat.headerBytes, isHello(MessageFormat.sequence(of: UnsafeRawBufferPointer(answer))) { return }
                }
            } catch IPCError.system(_, ECONNREFUSED, _) {
                // Nobody bound yet or an ICMP error from an earlier try: ask again.
            }
        }
        throw IPCError.timeout(
            "the UDP consumer did not acknowledge the producer's hello after \(attempts) tries \(retransmitMilliseconds) ms apart")
    }

    /// The hello datagram: the header, then the secret's bytes (none when the cell has no secret; the
    /// acknowledgement is that bare header).
    static func hello(_ secret: String?) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: MessageFormat.headerBytes)
        header.withUnsafeMutableBytes { $0.storeBytes(of: helloSequence.littleEndian, as: UInt64.self) }
        return header + Array((secret ?? "").utf8)
    }
}
