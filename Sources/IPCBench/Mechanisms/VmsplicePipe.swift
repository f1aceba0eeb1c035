import CIPCShim
import Glibc
import SystemPackage

/// A pipe fed by vmsplice: the producer writes each message into one of a ring of page-aligned
/// buffers and hands the pages to the pipe by reference (SPLICE_F_GIFT); the consumer read()s them
/// out, the one copy. The pipe is created by the parent, inherited by both workers and enlarged to
/// fs.pipe-max-size so that it can reference as much as the C reference's (`fd_bw vmsplice_read`).
///
/// The pipe holds references to the producer's pages, not copies, so a buffer must not be rewritten
/// until the consumer has drained it. The pipe never references more pages than it has slots (its
/// size in pages), always the most recently spliced ones, so a ring of at least twice the pipe's size
/// (and at least two messages) is never rewritten under a reader, without any acknowledgement.
///
/// Latency mode: the forward direction is vmspliced; the reply returns on a second, plain pipe by
/// write/read (as `pipe` does), so a round trip is one vmsplice hop plus one write/read hop.
///
/// Optional variant `write/read-maxpipe`: plain write/read through the same enlarged pipe, the fair
/// two-copy comparison (the `pipe` mechanism keeps the default 64 KiB pipe).
public struct VmsplicePipeMechanism: Mechanism {
    public init() {}
    public let id = "vmsplice"
    public let summary = "pipe enlarged to fs.pipe-max-size, fed by vmsplice(SPLICE_F_GIFT) from a page-aligned ring, read() by the consumer"

    public static let vmspliceVariant = "vmsplice/read"
    public static let writeVariant = "write/read-maxpipe"
    static let maximumPipeSizePath = "/proc/sys/fs/pipe-max-size"

    public func variants(for mode: Mode) -> [String] { [Self.vmspliceVariant] }
    public func optionalVariants(for mode: Mode) -> [String] { [Self.writeVariant] }
    public func copies(for variant: String) -> Int { variant == Self.vmspliceVariant ? 1 : 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.readinessBased }
    public var completionRingUnavailableReason: String { "vmsplice has no io_uring operation" }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        guard [Self.vmspliceVariant, Self.writeVariant].contains(options.variant) else {
            throw IPCError.setup("vmsplice has no variant '\(options.variant)'")
        }
        let rendezvous = try Rendezvous.inheritedPipePair()
        // The forward pipe: the producer's write end.
        Self.enlarge(rendezvous.producerDescriptors[0])
        return rendezvous
    }

    /// Grows the pipe to fs.pipe-max-size, or as close as the user's pipe-page allowance
    /// (fs.pipe-user-pages-soft) permits. Failure keeps the default; the producer sizes its ring
    /// from the size the pipe really has.
    static func enlarge(_ fd: Int32) {
        var bytes = SystemFacts.readInt(maximumPipeSizePath) ?? (1 << 20)
        let current = Int(ipcb_pipe_size(fd))
        while bytes > current {
            if ipcb_set_pipe_size(fd, Int32(clamping: bytes)) >= 0 { return }
            bytes /= 2
        }
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        // The consumer's side is an ordinary pipe reader (and, for replies, writer).
        ImmediateListener {
            try StreamEndpoint(
                readDescriptor: Rendezvous.inheritedDescriptor(1), writeDescriptor: Rendezvous.inheritedDescriptor(0), options: options)
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let writeEnd = Rendezvous.inheritedDescriptor(0)
        let readEnd = Rendezvous.inheritedDescriptor(1)
        if options.variant == Self.writeVariant {
            return try StreamEndpoint(readDescriptor: readEnd, writeDescriptor: writeEnd, options: options)
        }
        let pipeBytes = ipcb_pipe_size(writeEnd)
        guard pipeBytes > 0 else { throw IPCError.lastSystemError("fcntl(F_GETPIPE_SZ)") }
        return try VmspliceProducerEndpoint(spliceDescriptor: writeEnd, replyDescriptor: readEnd, pipeBytes: Int(pipeBytes), options: options)
    }
}

/// The producer's side of `vmsplice/read`: a ring of page-aligned buffers spliced into the pipe,
/// and a private buffer replies are read into.
final class VmspliceProducerEndpoint: MessageEndpoint {
    private let spliceDescriptor: Int32
    private let replyDescriptor: Int32
    /// Mapped, not allocated: unmapping leaves the pages to the pipe's references, whereas freed
    /// heap memory could be reused (and rewritten) before the consumer has drained the last messages.
    private let ring: UnsafeMutableRawPointer
    private let ringBytes: Int
    private let stride: Int
    private let slots: Int
    private var next = 0
    private let replyBuffer: PrivateBuffer
    /// vmsplice honours the pipe's O_NONBLOCK (EAGAIN when full), so every wait strategy applies.
    private let waiter: ReadinessWaiter

    init(spliceDescriptor: Int32, replyDescriptor: Int32, pipeBytes: Int, options: EndpointOptions) throws {
        let messageBytes = options.messageBytes
        self.spliceDescriptor = spliceDescriptor
        self.replyDescriptor = replyDescriptor
        waiter = try ReadinessWaiter(options: options, readDescriptor: replyDescriptor, writeDescriptor: spliceDescriptor)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        stride = (max(messageBytes, 1) + page - 1) / page * page
        // Twice the pipe: the pages it may still reference all lie in the messages before the
        // one being written (see the mechanism's comment).
        slots = max(2, (2 * pipeBytes + stride - 1) / stride)
        ringBytes = slots * stride
        let mapped = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapped, mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw IPCError.lastSystemError("mmap", "\(ringBytes)-byte vmsplice ring")
        }
        ring = mapped
        replyBuffer = PrivateBuffer(byteCount: max(messageBytes, 1))
        memset(ring, 0x78, ringBytes)
    }

    deinit {
        munmap(ring, ringBytes)
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let start = ring + next * stride
        next = next + 1 == slots ? 0 : next + 1
        fill(UnsafeMutableRawBufferPointer(start: start, count: size))
        var offset = 0
        while offset < size {
            // A full pipe takes part of the message; the rest follows once the reader drains it.
            let spliced: Int
            do throws(Errno) {
                spliced = try SystemCall.retrying { ipcb_vmsplice_gift(spliceDescriptor, start + offset, size - offset) }
            } catch .wouldBlock {
                try waiter.waitWritable(spliceDescriptor)
                continue
            } catch {
                throw IPCError.system("vmsplice", error)
            }
            guard spliced > 0 else { throw IPCError.peerClosed("vmsplice moved nothing into the pipe") }
            offset += spliced
        }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let reply = replyBuffer.prefix(size)
        guard try Descriptor.readExactly(replyDescriptor, into: reply, waiter: waiter) else { return false }
        consume(UnsafeRawBufferPointer(reply))
        return true
    }

    func close() {
        waiter.close()
        Glibc.close(spliceDescriptor)
        Glibc.close(replyDescriptor)
    }
}
