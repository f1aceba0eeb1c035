import Glibc
import SystemPackage

/// An endpoint over a reliable datagram socket (UNIX SOCK_DGRAM, SOCK_SEQPACKET): each message is
/// one datagram, sent from and received into private buffers (two copies, like a stream socket),
/// but never framed by the reader: a datagram of any length other than the message size is an error.
public final class DatagramEndpoint: MessageEndpoint {
    private let descriptor: Int32
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer
    /// An unconnected consumer socket connects to whoever sends it the first datagram, so its
    /// answers need no address and other senders are refused from then on.
    private var connectsToFirstSender: Bool
    /// SOCK_SEQPACKET reports the peer's close as a zero-length read; SOCK_DGRAM has no close.
    private let zeroLengthMeansClosed: Bool
    private let waiter: ReadinessWaiter

    /// `options` gives the largest message and how to wait (`wait`).
    /// Over a socket the endpoint owns from here on (closed if this fails).
    convenience init(socket: consuming OwnedDescriptor, options: EndpointOptions, connectsToFirstSender: Bool, zeroLengthMeansClosed: Bool) throws {
        try self.init(descriptor: socket.rawValue, options: options, connectsToFirstSender: connectsToFirstSender, zeroLengthMeansClosed: zeroLengthMeansClosed)
        _ = socket.release()
    }

    public init(descriptor: Int32, options: EndpointOptions, connectsToFirstSender: Bool, zeroLengthMeansClosed: Bool) throws {
        waiter = try ReadinessWaiter(options: options, readDescriptor: descriptor, writeDescriptor: descriptor)
        let maximumMessageBytes = options.messageBytes
        self.descriptor = descriptor
        self.connectsToFirstSender = connectsToFirstSender
        self.zeroLengthMeansClosed = zeroLengthMeansClosed
        sendBuffer = PrivateBuffer(byteCount: maximumMessageBytes)
        receiveBuffer = PrivateBuffer(byteCount: maximumMessageBytes)
    }

    public func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        try Datagram.send(descriptor, UnsafeRawBufferPointer(message), waiter: waiter)
    }

    public func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = receiveBuffer.prefix(size)
        var length: Int
        while true {
            if connectsToFirstSender {
                length = try Datagram.receiveConnectingToSender(descriptor, into: message)
                connectsToFirstSender = length == Datagram.timedOut
            } else {
                length = try Datagram.receive(descriptor, into: message, waiter: waiter)
            }
            if length != Datagram.timedOut { break }
            // EAGAIN: the channel is empty and this cell does not block in recv.
            try waiter.waitReadable(descriptor)
        }
        if length != size {
            if length == 0, zeroLengthMeansClosed { return false }
            throw Datagram.wrongLength(length, expected: size)
        }
        consume(UnsafeRawBufferPointer(message))
        return true
    }

    /// Completions taken from the waiter's io_uring (0 without one): one per recv or send.
    var completionsSoFar: UInt32 { waiter.completionsSoFar ?? 0 }

    public func close() {
        waiter.close()
        Glibc.close(descriptor)
    }
}

/// Calls shared by the datagram endpoints. A message is one datagram: sent whole (a datagram socket
/// sends all or nothing) and received with MSG_TRUNC, so recv reports the datagram's real length
/// even when it is longer than the buffer and nothing is ever silently cut.
enum Datagram {
    /// What `receive` returns when the socket's receive timeout (SO_RCVTIMEO) passed.
    static let timedOut = -1

    @inline(__always)
    static func send(_ fd: Int32, _ message: UnsafeRawBufferPointer) throws {
        try send(fd, message, waiter: .blocking)
    }

    /// `send` on a descriptor set up by `waiter`, waiting its way while the socket buffer is full.
    @inline(__always)
    static func send(_ fd: Int32, _ message: UnsafeRawBufferPointer, waiter: ReadinessWaiter) throws {
        while true {
            let sent: Int
            do throws(Errno) {
                sent = try SystemCall.retrying { waiter.send(fd, message.baseAddress!, message.count, flags: 0) }
            } catch .wouldBlock {
                try waiter.waitWritable(fd)
                continue
            } catch {
                throw IPCError.system("send", error, "\(message.count)-byte datagram")
            }
            guard sent == message.count else { throw IPCError.worker("send took \(sent) bytes of a \(message.count)-byte datagram") }
            return
        }
    }

    /// Receives one datagram into `buffer` and returns its real length, or `timedOut` (EAGAIN: a
    /// non-blocking socket was empty, or a receive timeout passed).
    @inline(__always)
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, waiter: ReadinessWaiter = .blocking) throws -> Int {
        do throws(Errno) {
            return try SystemCall.retrying { waiter.receive(fd, buffer.baseAddress!, buffer.count, flags: Int32(MSG_TRUNC)) }
        } catch .wouldBlock {
            return timedOut
        } catch {
            throw IPCError.system("recv", error)
        }
    }

    /// Receives one datagram and connects the socket to its sender (used once, for the first one).
    static func receiveConnectingToSender(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var sender = sockaddr_storage()
        var senderLength = socklen_t(0)
        let length: Int
        do throws(Errno) {
            length = try SystemCall.retrying {
                senderLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                return withUnsafeMutablePointer(to: &sender) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC), $0, &senderLength)
                    }
                }
            }
        } catch .wouldBlock {
            return timedOut
        } catch {
            throw IPCError.system("recvfrom", error)
        }
        let connected = withUnsafePointer(to: &sender) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, senderLength) }
        }
        guard connected == 0 else { throw IPCError.lastSystemError("connect", "to the sender of the first datagram") }
        return length
    }

    static func wrongLength(_ length: Int, expected: Int) -> IPCError {
        .worker("received a datagram of \(length) bytes where a \(expected)-byte message was expected")
    }

    /// A socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) in milliseconds.
    static func setTimeout(_ fd: Int32, _ option: Int32, milliseconds: Int) throws {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        guard setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw IPCError.lastSystemError("setsockopt", option == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO")
        }
    }

    /// The value the kernel actually uses for an integer socket option (it doubles buffer sizes).
    static func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
    }
}
