import CIPCShim
import Glibc
import SystemPackage

/// A memfd shared by file-descriptor passing: the producer creates and maps an anonymous memory
/// file, seals its size, and hands it over once, with SCM_RIGHTS, on a UNIX socket the consumer
/// listens on by path. From then on every message is written in place into a ring of slots in the
/// shared mapping and read there; only the slot number crosses the socket (zero copies of the
/// payload). Latency replies are written in place into a second ring in the same memfd.
///
/// Flow control as for `cma` (`HandoffChannel`): a slot is rewritten only after the consumer has
/// finished with it, acknowledged on the same socket.
public struct MemfdHandoffMechanism: Mechanism {
    public let sharesMemory = true
    public init() {}
    public let id = "memfd"
    public let summary = "memfd passed once with SCM_RIGHTS; messages written and read in place, slot numbers on a UNIX socket"

    public static let inPlaceVariant = "scm-rights/in-place"
    static let memfdName = "ipcbench-memfd"

    public func variants(for mode: Mode) -> [String] { [Self.inPlaceVariant] }
    public func copies(for variant: String) -> Int { 0 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.readinessBased }
    public var completionRingUnavailableReason: String { "the hand-off passes descriptors (sendmsg/recvmsg with SCM_RIGHTS), not done through io_uring here" }

    public func unavailableReason() -> String? { Self.availability }

    static let availability: String? = {
        let fd = ipcb_memfd_create(memfdName)
        guard fd >= 0 else { return "memfd_create does not work here: \(String(cString: strerror(errno)))" }
        Glibc.close(fd)
        return nil
    }()

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        guard options.variant == Self.inPlaceVariant else { throw IPCError.setup("memfd has no variant '\(options.variant)'") }
        return Rendezvous(parameters: ["path": workspace + "/memfd.sock"])
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let path = try rendezvous.require("path")
        let fd = try Socket.listeningUnixStream(path: path)
        return ImmediateListener {
            defer { Glibc.close(fd) }
            let connection = try Socket.accept(fd)
            let endpoint = try MemfdEndpoint(consumerOn: connection.rawValue, options: options)
            _ = connection.release()  // the endpoint's now
            return endpoint
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let path = try rendezvous.require("path")
        let socket = try Socket.make(AF_UNIX, Int32(SOCK_STREAM.rawValue))
        try Socket.connect(socket.rawValue, Socket.unixAddress(path), path)
        let endpoint = try MemfdEndpoint(producerOn: socket.rawValue, options: options)
        _ = socket.release()  // the endpoint's now
        return endpoint
    }
}

/// One side of a `memfd` pair: the whole shared mapping, the ring it writes (forward for the
/// producer, backward for the consumer) and the ring it reads.
final class MemfdEndpoint: SharedMemoryEndpoint {
    private let channel: HandoffChannel
    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int
    private let stride: Int
    private let outgoingOffset: Int
    private let incomingOffset: Int
    private let incomingSlots: Int

    /// Creates, sizes, seals and maps the memfd, and sends it to the consumer.
    convenience init(producerOn socket: Int32, options: EndpointOptions) throws {
        let geometry = HandoffGeometry(options)
        let memfd = ipcb_memfd_create(MemfdHandoffMechanism.memfdName)
        guard memfd >= 0 else { throw IPCError.lastSystemError("memfd_create") }
        defer { Glibc.close(memfd) }  // the mapping and the copy in flight keep the memory alive
        guard ftruncate(memfd, off_t(geometry.totalBytes)) == 0 else { throw IPCError.lastSystemError("ftruncate", "memfd") }
        guard ipcb_memfd_seal_size(memfd) == 0 else { throw IPCError.lastSystemError("fcntl(F_ADD_SEALS)", "memfd") }
        // With a memory node, nothing may be faulted in before the memfd is bound to it.
        let mapping = try Self.map(memfd, bytes: geometry.totalBytes, populate: options.memoryNode == nil)
        if let node = options.memoryNode {
            do {
                try MemoryBinding.populate(UnsafeMutableRawBufferPointer(start: mapping, count: geometry.totalBytes), onNode: node)
            } catch {
                munmap(mapping, geometry.totalBytes)
                throw error
            }
        }

        var hello = HandoffRecord(
            kind: HandoffRecord.hello, slot: UInt32(geometry.forwardSlots), length: UInt64(geometry.stride),
            location: UInt64(geometry.totalBytes), acknowledged: 0)
        let sent = withUnsafeBytes(of: &hello) { ipcb_send_descriptor(socket, memfd, $0.baseAddress, $0.count) }
        guard sent == HandoffRecord.bytes else {
            let failure = IPCError.lastSystemError("sendmsg(SCM_RIGHTS)", "memfd")
            munmap(mapping, geometry.totalBytes)
            throw failure
        }
        try self.init(socket: socket, role: .producer, geometry: geometry, mapping: mapping, options: options)
    }

    /// Receives the memfd with the producer's hello, checks its size and seals, and maps it.
    convenience init(consumerOn socket: Int32, options: EndpointOptions) throws {
        let geometry = HandoffGeometry(options)
        var hello = HandoffRecord(kind: 0, slot: 0, length: 0, location: 0, acknowledged: 0)
        var memfd: Int32 = -1
        var received = 0
        while received < HandoffRecord.bytes {
            var passed: Int32 = -1
            let count: Int
            do throws(Errno) {
                count = try SystemCall.retrying {
                    withUnsafeMutableBytes(of: &hello) { ipcb_receive_descriptor(socket, $0.baseAddress! + received, $0.count - received, &passed) }
                }
            } catch {
                if memfd >= 0 { Glibc.close(memfd) }
                throw IPCError.system("recvmsg", error, "memfd hello")
            }
            if passed >= 0 {
                if memfd >= 0 { Glibc.close(memfd) }
                memfd = passed
            }
            guard count > 0 else {
                if memfd >= 0 { Glibc.close(memfd) }
                throw IPCError.setup("producer closed the socket before passing the memfd")
            }
            received += count
        }
        guard memfd >= 0 else { throw IPCError.setup("producer's hello carried no memfd") }
        defer { Glibc.close(memfd) }
        guard hello.kind == HandoffRecord.hello, Int(hello.slot) == geometry.forwardSlots,
              Int(hello.length) == geometry.stride, Int(hello.location) == geometry.totalBytes
        else {
            throw IPCError.setup("producer's memfd layout (\(hello.slot) slots of \(hello.length) bytes, \(hello.location) in all) is not the expected one")
        }
        // The producer must not be able to shrink the file under our mapping (SIGBUS).
        var status = stat()
        guard fstat(memfd, &status) == 0 else { throw IPCError.lastSystemError("fstat", "memfd") }
        guard Int(status.st_size) >= geometry.totalBytes, ipcb_memfd_size_sealed(memfd) == 1 else {
            throw IPCError.setup("the memfd passed is \(status.st_size) bytes or not sealed against shrinking")
        }
        let mapping = try Self.map(memfd, bytes: geometry.totalBytes)
        try self.init(socket: socket, role: .consumer, geometry: geometry, mapping: mapping, options: options)
    }

    private init(socket: Int32, role: Role, geometry: HandoffGeometry, mapping: UnsafeMutableRawPointer, options: EndpointOptions) throws {
        channel = HandoffChannel(
            readDescriptor: socket, writeDescriptor: socket,
            outgoingSlots: geometry.outgoingSlots(role), incomingSlots: geometry.incomingSlots(role))
        do {
            try channel.waitFromNowOn(options)
        } catch {
            munmap(mapping, geometry.totalBytes)
            throw error
        }
        self.mapping = mapping
        mappingBytes = geometry.totalBytes
        stride = geometry.stride
        // Forward ring first, then the backward (reply) ring.
        outgoingOffset = role == .producer ? 0 : geometry.forwardBytes
        incomingOffset = role == .producer ? geometry.forwardBytes : 0
        incomingSlots = geometry.incomingSlots(role)
        // Write-fault this side's ring now (MAP_POPULATE may map shared pages read-only).
        memset(mapping + outgoingOffset, 0, geometry.outgoingSlots(role) * stride)
    }

    private static func map(_ memfd: Int32, bytes: Int, populate: Bool = true) throws -> UnsafeMutableRawPointer {
        let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), memfd, 0)
        guard let mapped, mapped != UnsafeMutableRawPointer(bitPattern: -1) else { throw IPCError.lastSystemError("mmap", "memfd") }
        return mapped
    }

    deinit {
        munmap(mapping, mappingBytes)
    }

    var sharedRegion: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: mapping, count: mappingBytes) }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let slot = try channel.acquireSlot()
        let offset = outgoingOffset + slot * stride
        fill(UnsafeMutableRawBufferPointer(start: mapping + offset, count: size))
        try channel.post(slot: slot, length: size, location: UInt64(offset))
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard let record = try channel.nextMessage() else { return false }
        // Only the slot number is trusted, and only within this side's incoming ring.
        guard Int(record.length) == size, size <= stride, Int(record.slot) < incomingSlots else {
            throw IPCError.peerClosed("doorbell for slot \(record.slot), \(record.length) bytes where \(size) were expected")
        }
        consume(UnsafeRawBufferPointer(start: mapping + incomingOffset + Int(record.slot) * stride, count: size))
        try channel.release()
        return true
    }

    func close() {
        channel.close()
    }
}
