import CIPCShim
import Glibc
import SystemPackage

/// Cross-memory attach: the receiver pulls each message straight out of the sender's memory with
/// process_vm_readv (one copy, receiver side). The sender writes the message into one of a ring of
/// private buffers and posts a small descriptor (slot, address, length) on a control pipe; the
/// receiver copies the payload into its own buffer and acknowledges, so the sender never rewrites a
/// buffer that is still being read, while it fills the next one.
///
/// Both workers inherit two parent-created pipes, one per direction. Neither side publishes anything
/// through the parent, so each learns the other's pid from a hello record on those pipes, and lets it
/// read its memory (PR_SET_PTRACER, for Yama ptrace_scope 1) before answering or sending anything.
/// Latency replies take the same path in the other direction.
public struct CrossMemoryAttachMechanism: Mechanism {
    public init() {}
    public let id = "cma"
    public let summary = "process_vm_readv pulls each message from the producer's ring; descriptors and acks on a pipe pair"

    public static let pullVariant = "process_vm_readv/pipe"

    public func variants(for mode: Mode) -> [String] { [Self.pullVariant] }
    public func copies(for variant: String) -> Int { 1 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.readinessBased }
    public var completionRingUnavailableReason: String { "process_vm_readv has no io_uring operation" }

    public func unavailableReason() -> String? { Self.availability }

    /// Probed once per process: Yama's policy first (siblings cannot read each other under scope 2
    /// or 3 without CAP_SYS_PTRACE), then a read of our own memory, which fails where the kernel
    /// lacks CONFIG_CROSS_MEMORY_ATTACH or a seccomp filter forbids the call.
    static let availability: String? = {
        if let reason = PtraceAccess.yamaUnavailableReason(for: "process_vm_readv") { return reason }
        var source: UInt64 = 0x1BC0_FFEE
        var target: UInt64 = 0
        let read = withUnsafeMutableBytes(of: &target) { local in
            withUnsafeBytes(of: &source) { remote in
                ipcb_process_vm_read(getpid(), local.baseAddress, remote.baseAddress, 8)
            }
        }
        if read != 8 || target != source {
            return "process_vm_readv does not work here: \(String(cString: strerror(errno)))"
        }
        return nil
    }()

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        guard options.variant == Self.pullVariant else { throw IPCError.setup("cma has no variant '\(options.variant)'") }
        return try Rendezvous.inheritedPipePair()
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        // The producer's hello can only be read once it runs, so the consumer completes in accept().
        ImmediateListener { try CrossMemoryEndpoint(role: .consumer, options: options) }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        try CrossMemoryEndpoint(role: .producer, options: options)
    }
}

/// One side of a `cma` pair: a private ring it sends from, and a private buffer it pulls into.
final class CrossMemoryEndpoint: MessageEndpoint {
    private let channel: HandoffChannel
    private let ring: UnsafeMutableRawBufferPointer
    private let stride: Int
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private let peer: pid_t

    init(role: Role, options: EndpointOptions) throws {
        let geometry = HandoffGeometry(options)
        let writeEnd = Rendezvous.inheritedDescriptor(0)
        let readEnd = Rendezvous.inheritedDescriptor(1)
        channel = HandoffChannel(
            readDescriptor: readEnd, writeDescriptor: writeEnd,
            outgoingSlots: geometry.outgoingSlots(role), incomingSlots: geometry.incomingSlots(role))
        stride = geometry.stride
        ring = .allocate(byteCount: geometry.stride * geometry.outgoingSlots(role), alignment: 4096)
        receiveBuffer = .allocate(byteCount: max(options.messageBytes, 1), alignment: 4096)
        // Fault every page in now so first-touch faults stay out of the timed loop.
        ring.initializeMemory(as: UInt8.self, repeating: 0)
        receiveBuffer.initializeMemory(as: UInt8.self, repeating: 0)

        // Hello: the producer speaks first; each side allows its peer to read it before it answers
        // or sends a message, so no process_vm_readv can come before the permission.
        do {
            switch role {
            case .producer:
                try channel.sendHello(location: UInt64(getpid()))
                peer = pid_t(try channel.receiveHello().location)
                _ = ipcb_allow_ptracer(peer)
            case .consumer:
                peer = pid_t(try channel.receiveHello().location)
                _ = ipcb_allow_ptracer(peer)
                try channel.sendHello(location: UInt64(getpid()))
            }
            try channel.waitFromNowOn(options)
        } catch {
            ring.deallocate()
            receiveBuffer.deallocate()
            throw error
        }
    }

    deinit {
        ring.deallocate()
        receiveBuffer.deallocate()
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let slot = try channel.acquireSlot()
        let start = ring.baseAddress! + slot * stride
        fill(UnsafeMutableRawBufferPointer(start: start, count: size))
        try channel.post(slot: slot, length: size, location: UInt64(UInt(bitPattern: start)))
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard let record = try channel.nextMessage() else { return false }
        guard Int(record.length) == size, size <= receiveBuffer.count else {
            throw IPCError.peerClosed("descriptor for \(record.length) bytes where \(size) were expected")
        }
        var offset = 0
        while offset < size {
            let remote = UnsafeRawPointer(bitPattern: UInt(record.location) + UInt(offset))
            let count: Int
            do throws(Errno) {
                count = try SystemCall.retrying { ipcb_process_vm_read(peer, receiveBuffer.baseAddress! + offset, remote, size - offset) }
            } catch {
                throw IPCError.system("process_vm_readv", error, "from pid \(peer)")
            }
            guard count > 0 else { throw IPCError.peerClosed("process_vm_readv read nothing at \(record.location) in pid \(peer)") }
            offset += count
        }
        // Copied: the peer may reuse its buffer while this one is looked at.
        try channel.release()
        consume(UnsafeRawBufferPointer(start: receiveBuffer.baseAddress, count: size))
        return true
    }

    func close() {
        channel.close()
    }
}
