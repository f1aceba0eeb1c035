import CIPCShim
import Glibc

/// `--readers` on shm-posix: one ring in POSIX shared memory that the producer writes once and every
/// reader reads in place (zero copies). The producer publishes a count of messages (`head`); each
/// reader publishes how many it has finished with (its own `tail`, on its own cache line); a slot is
/// rewritten only once every reader is past it. Both sides poll (spin), giving the CPU up now and
/// then so that readers sharing a CPU still make progress.
///
/// Layout: line 0 `head`; lines 1…N the readers' tails; then `slots` slots of `stride` bytes.
struct BroadcastLayout {
    let readers: Int
    let slots: Int
    let stride: Int

    static let line = 64

    init(readers: Int, messageBytes: Int) {
        self.readers = readers
        stride = (messageBytes + Self.line - 1) / Self.line * Self.line
        // About 4 MiB of slots, between 8 and 256 of them.
        slots = max(8, min(256, (4 << 20) / stride))
    }

    init(_ rendezvous: Rendezvous) throws {
        guard let readers = Int(try rendezvous.require("readers")), let slots = Int(try rendezvous.require("slots")),
              let stride = Int(try rendezvous.require("stride")), readers > 0, slots > 0, stride > 0
        else { throw IPCError.setup("broadcast ring parameters are not numbers") }
        self.readers = readers
        self.slots = slots
        self.stride = stride
    }

    var parameters: [String: String] { ["readers": String(readers), "slots": String(slots), "stride": String(stride)] }
    var slotsOffset: Int { (1 + readers) * Self.line }
    var segmentBytes: Int { slotsOffset + slots * stride }
}

extension POSIXSharedMemoryMechanism: FanOutMechanism {
    static var broadcastVariant: String { "in-place/spin" }

    public var fanOutShape: String { "one broadcast ring written once and read in place by every reader (in-place/spin); the producer waits for the slowest reader" }

    public func fanOutVariants(for mode: Mode) -> [String] { [Self.broadcastVariant] }

    public func prepareFanOut(workspace: String, readers: Int, options: EndpointOptions) throws -> FanOutRendezvous {
        let layout = BroadcastLayout(readers: readers, messageBytes: options.messageBytes)
        let (name, descriptor) = try POSIXSharedMemorySegment.createObject()
        defer { Glibc.close(descriptor) }
        guard ftruncate(descriptor, off_t(layout.segmentBytes)) == 0 else {
            let failure = IPCError.lastSystemError("ftruncate", name)
            shm_unlink(name)
            throw failure
        }
        var producer = Rendezvous(parameters: layout.parameters)
        producer.parameters["shm-name"] = name
        let readerRendezvous = (0..<readers).map { index in
            var rendezvous = producer
            rendezvous.parameters["reader"] = String(index)
            return rendezvous
        }
        return FanOutRendezvous(producer: producer, readers: readerRendezvous)
    }

    public func connectToReaders(_ rendezvous: Rendezvous, readers: Int, options: EndpointOptions) throws -> any MessageEndpoint {
        let (mapping, layout) = try Self.mapBroadcast(rendezvous)
        return BroadcastProducer(mapping: mapping, layout: layout)
    }

    /// A reader's side: the cell's rendezvous names it with `reader`.
    public func listenAsReader(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        guard let index = Int(try rendezvous.require("reader")) else { throw IPCError.setup("reader number is not a number") }
        let (mapping, layout) = try Self.mapBroadcast(rendezvous)
        guard index < layout.readers else {
            mapping.unmap()
            throw IPCError.setup("reader \(index) of a ring for \(layout.readers)")
        }
        return ImmediateListener { BroadcastReader(mapping: mapping, layout: layout, index: index) }
    }

    private static func mapBroadcast(_ rendezvous: Rendezvous) throws -> (SegmentMapping, BroadcastLayout) {
        let layout = try BroadcastLayout(rendezvous)
        return (try POSIXSharedMemorySegment.mapObject(rendezvous.require("shm-name"), bytes: layout.segmentBytes, holding: "the broadcast ring"), layout)
    }
}

/// Polls that pass between two offers of the CPU while waiting.
private let pollsBetweenYields = 256

final class BroadcastProducer: MessageEndpoint {
    private let mapping: SegmentMapping
    private let layout: BroadcastLayout
    private let head: UnsafeMutablePointer<UInt32>
    private let tails: UnsafeMutableRawPointer
    private let slots: UnsafeMutableRawPointer
    private var published: UInt32 = 0
    /// The slowest reader's tail when last read: reread only when the ring looks full.
    private var slowest: UInt32 = 0

    init(mapping: SegmentMapping, layout: BroadcastLayout) {
        self.mapping = mapping
        self.layout = layout
        head = mapping.base.assumingMemoryBound(to: UInt32.self)
        tails = mapping.base + BroadcastLayout.line
        slots = mapping.base + layout.slotsOffset
    }

    private func slowestTail() -> UInt32 {
        var slowest = UInt32.max
        var distance: UInt32 = 0
        for reader in 0..<layout.readers {
            let tail = ipcb_load_acquire_u32((tails + reader * BroadcastLayout.line).assumingMemoryBound(to: UInt32.self))
            // Counters wrap: compare by how far behind the head each tail is.
            if published &- tail >= distance {
                distance = published &- tail
                slowest = tail
            }
        }
        return slowest
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        var polls = 0
        while published &- slowest >= UInt32(layout.slots) {
            slowest = slowestTail()
            if published &- slowest < UInt32(layout.slots) { break }
            polls += 1
            if polls % pollsBetweenYields == 0 { sched_yield() } else { ipcb_cpu_relax() }
        }
        let slot = slots + Int(published % UInt32(layout.slots)) * layout.stride
        fill(UnsafeMutableRawBufferPointer(start: slot, count: size))
        published &+= 1
        ipcb_store_release_u32(head, published)
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        throw IPCError.setup("a broadcast ring carries no answers: --readers measures streaming")
    }

    func close() { mapping.unmap() }
}

final class BroadcastReader: MessageEndpoint {
    private let mapping: SegmentMapping
    private let layout: BroadcastLayout
    private let head: UnsafeMutablePointer<UInt32>
    private let tail: UnsafeMutablePointer<UInt32>
    private let slots: UnsafeMutableRawPointer
    private var consumed: UInt32 = 0
    /// The head when last read: reread only when every published message has been consumed.
    private var available: UInt32 = 0

    init(mapping: SegmentMapping, layout: BroadcastLayout, index: Int) {
        self.mapping = mapping
        self.layout = layout
        head = mapping.base.assumingMemoryBound(to: UInt32.self)
        tail = (mapping.base + BroadcastLayout.line * (1 + index)).assumingMemoryBound(to: UInt32.self)
        slots = mapping.base + layout.slotsOffset
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        throw IPCError.setup("a broadcast ring's readers send nothing: --readers measures streaming")
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        var polls = 0
        while available == consumed {
            available = ipcb_load_acquire_u32(head)
            if available != consumed { break }
            polls += 1
            if polls % pollsBetweenYields == 0 { sched_yield() } else { ipcb_cpu_relax() }
        }
        let slot = slots + Int(consumed % UInt32(layout.slots)) * layout.stride
        consume(UnsafeRawBufferPointer(start: slot, count: size))
        consumed &+= 1
        ipcb_store_release_u32(tail, consumed)
        return true
    }

    func close() { mapping.unmap() }
}
