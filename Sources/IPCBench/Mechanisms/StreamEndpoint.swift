import Glibc
import SystemPackage

/// An endpoint over byte-stream file descriptors (pipes, FIFOs, stream sockets): messages are framed
/// by their fixed size, written from and read into private buffers (the classic two-copy path).
public final class StreamEndpoint: MessageEndpoint {
    private let readDescriptor: Int32
    private let writeDescriptor: Int32
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer
    private let waiter: ReadinessWaiter

    /// `readDescriptor` and `writeDescriptor` may be the same (sockets) or either may be -1 (one-way).
    /// `options` gives the message size and how to wait (`wait`).
    public init(readDescriptor: Int32, writeDescriptor: Int32, options: EndpointOptions) throws {
        self.readDescriptor = readDescriptor
        self.writeDescriptor = writeDescriptor
        waiter = try ReadinessWaiter(options: options, readDescriptor: readDescriptor, writeDescriptor: writeDescriptor)
        let maximumMessageBytes = options.messageBytes
        sendBuffer = PrivateBuffer(byteCount: maximumMessageBytes)
        receiveBuffer = PrivateBuffer(byteCount: maximumMessageBytes)
    }

    /// Over a connected socket, which the endpoint owns from here on (closed if this fails).
    convenience init(socket: consuming OwnedDescriptor, options: EndpointOptions) throws {
        try self.init(readDescriptor: socket.rawValue, writeDescriptor: socket.rawValue, options: options)
        _ = socket.release()
    }

    public func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        try Descriptor.writeAll(writeDescriptor, UnsafeRawBufferPointer(message), waiter: waiter)
    }

    public func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = receiveBuffer.prefix(size)
        guard try Descriptor.readExactly(readDescriptor, into: message, waiter: waiter) else { return false }
        consume(UnsafeRawBufferPointer(message))
        return true
    }

    /// Completions taken from the waiter's io_uring (0 without one): one per read or write call.
    var completionsSoFar: UInt32 { waiter.completionsSoFar ?? 0 }

    public func close() {
        waiter.close()
        if readDescriptor >= 0 { Glibc.close(readDescriptor) }
        if writeDescriptor >= 0, writeDescriptor != readDescriptor { Glibc.close(writeDescriptor) }
    }
}

/// Small helpers over raw file descriptors.
public enum Descriptor {
    /// Writes every byte to a blocking descriptor, retrying short writes and EINTR.
    @inline(__always)
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(fd, bytes, waiter: .blocking)
    }

    /// Reads exactly `buffer.count` bytes from a blocking descriptor. Returns false on end-of-file
    /// before the first byte; end-of-file in the middle of a message is an error (a torn message).
    @inline(__always)
    public static func readExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
        try readExactly(fd, into: buffer, waiter: .blocking)
    }

    /// Writes every byte to a descriptor set up by `waiter`, waiting its way when the channel is full.
    @inline(__always)
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, waiter: ReadinessWaiter) throws {
        var offset = 0
        while offset < bytes.count {
            do throws(Errno) {
                offset += try SystemCall.retrying { waiter.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            } catch .wouldBlock {
                try waiter.waitWritable(fd)
            } catch {
                throw IPCError.system("write", error)
            }
        }
    }

    /// `readExactly` from a descriptor set up by `waiter`, waiting its way when the channel is empty.
    @inline(__always)
    static func readExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, waiter: ReadinessWaiter) throws -> Bool {
        var offset = 0
        while offset < buffer.count {
            let count: Int
            do throws(Errno) {
                count = try SystemCall.retrying { waiter.read(fd, buffer.baseAddress! + offset, buffer.count - offset) }
            } catch .wouldBlock {
                try waiter.waitReadable(fd)
                continue
            } catch {
                throw IPCError.system("read", error)
            }
            if count == 0 {
                if offset == 0 { return false }
                throw IPCError.peerClosed("peer closed mid-message after \(offset) of \(buffer.count) bytes")
            }
            offset += count
        }
        return true
    }
}
