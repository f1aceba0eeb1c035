import Glibc

/// An endpoint over byte-stream file descriptors (pipes, FIFOs, stream sockets): messages are framed
/// by their fixed size, written from and read into private buffers (the classic two-copy path).
public final class StreamEndpoint: MessageEndpoint {
    private let readDescriptor: Int32
    private let writeDescriptor: Int32
    private let sendBuffer: UnsafeMutableRawBufferPointer
    private let receiveBuffer: UnsafeMutableRawBufferPointer

    /// `readDescriptor` and `writeDescriptor` may be the same (sockets) or either may be -1 (one-way).
    public init(readDescriptor: Int32, writeDescriptor: Int32, maximumMessageBytes: Int) {
        self.readDescriptor = readDescriptor
        self.writeDescriptor = writeDescriptor
        sendBuffer = .allocate(byteCount: maximumMessageBytes, alignment: 64)
        receiveBuffer = .allocate(byteCount: maximumMessageBytes, alignment: 64)
        // Touch every page now so first-touch faults stay out of the timed loop.
        sendBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        receiveBuffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
    }

    public func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = UnsafeMutableRawBufferPointer(rebasing: sendBuffer[0..<size])
        fill(message)
        try Descriptor.writeAll(writeDescriptor, UnsafeRawBufferPointer(message))
    }

    public func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[0..<size])
        guard try Descriptor.readExactly(readDescriptor, into: message) else { return false }
        consume(UnsafeRawBufferPointer(message))
        return true
    }

    public func close() {
        if readDescriptor >= 0 { Glibc.close(readDescriptor) }
        if writeDescriptor >= 0, writeDescriptor != readDescriptor { Glibc.close(writeDescriptor) }
    }
}

/// Small helpers over raw file descriptors.
public enum Descriptor {
    /// Writes every byte, retrying short writes and EINTR.
    @inline(__always)
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw IPCError.lastSystemError("write")
            }
            offset += written
        }
    }

    /// Reads exactly `buffer.count` bytes. Returns false on end-of-file before the first byte;
    /// end-of-file in the middle of a message is an error (a torn message).
    @inline(__always)
    public static func readExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
        var offset = 0
        while offset < buffer.count {
            let count = Glibc.read(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if count > 0 {
                offset += count
            } else if count == 0 {
                if offset == 0 { return false }
                throw IPCError.peerClosed("peer closed mid-message after \(offset) of \(buffer.count) bytes")
            } else if errno != EINTR {
                throw IPCError.lastSystemError("read")
            }
        }
        return true
    }

    public static func setCloseOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }
}
