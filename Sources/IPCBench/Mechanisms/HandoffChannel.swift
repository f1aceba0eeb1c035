import CIPCShim
import Glibc
import SystemPackage

/// How a handoff mechanism (`cma`, `memfd`) lays out its rings of message buffers. Both sides compute
/// it from the cell's options, so it need not travel.
struct HandoffGeometry {
    /// Distance between slots: whole cache lines, whole pages from one page up, so no two slots share
    /// a line (in place) and a pull pins as few pages as possible.
    let stride: Int
    /// Producer → consumer. Streaming gets enough slots that the copy of one message and the writing
    /// of the next overlap and acknowledgements come in batches; ping-pong needs two.
    let forwardSlots: Int
    /// Consumer → producer: replies in latency mode only.
    let backwardSlots = 2

    static let streamingRingBytes = 1 << 20

    init(_ options: EndpointOptions) {
        let size = max(options.messageBytes, 1)
        let alignment = size >= 4096 ? 4096 : 64
        stride = (size + alignment - 1) / alignment * alignment
        forwardSlots = options.mode == .latency ? 2 : min(64, max(4, Self.streamingRingBytes / stride))
    }

    func outgoingSlots(_ role: Role) -> Int { role == .producer ? forwardSlots : backwardSlots }
    func incomingSlots(_ role: Role) -> Int { role == .producer ? backwardSlots : forwardSlots }
    var forwardBytes: Int { forwardSlots * stride }
    var totalBytes: Int { (forwardSlots + backwardSlots) * stride }
}

/// One fixed-size record on a handoff control channel. Both ends are on one host, so it travels in
/// host byte order.
struct HandoffRecord {
    static let bytes = 32
    static let hello: UInt32 = 1
    static let message: UInt32 = 2
    static let acknowledgement: UInt32 = 3

    var kind: UInt32
    var slot: UInt32
    var length: UInt64
    /// Message: where the payload lies (an address in the sender, or an offset in a shared mapping).
    /// Hello: the sender's pid or the mapping's size.
    var location: UInt64
    /// How many of the receiver's messages the sender has finished with (piggybacked on every
    /// record, so ping-pong needs no acknowledgements of its own).
    var acknowledged: UInt64
}

/// Flow control for a ring of message buffers, over one byte-stream channel per direction (or one
/// socket for both): the sender posts (slot, length, location) records, the receiver returns buffers
/// by count. A buffer is reused only after the peer has said it is done with it.
///
/// Acknowledgements ride on every outgoing record (so ping-pong needs none of its own); a bare one is
/// sent once half the peer's ring (at least two buffers, at most all) is waiting for one. That cannot
/// deadlock: a peer blocked for buffers has its whole ring unacknowledged here, past the threshold.
/// The timed path allocates nothing: records land in fixed buffers.
final class HandoffChannel {
    let readDescriptor: Int32
    let writeDescriptor: Int32
    private let outgoingSlots: UInt64
    private let incomingSlots: Int
    private let acknowledgeEvery: UInt64

    private var sent: UInt64 = 0
    private var releasedByPeer: UInt64 = 0
    private var finished: UInt64 = 0
    private var acknowledgedToPeer: UInt64 = 0

    /// Message records read but not yet received: never more than the peer's ring holds.
    private let pending: UnsafeMutablePointer<HandoffRecord>
    private var pendingHead = 0
    private var pendingCount = 0
    /// Bytes read from the channel; a partial record stays at the front until the rest arrives.
    private let raw: UnsafeMutableRawBufferPointer
    private var rawFilled = 0
    /// Blocking during set-up (the hello); the cell's wait strategy from `waitFromNowOn` on.
    private var waiter = ReadinessWaiter.blocking

    init(readDescriptor: Int32, writeDescriptor: Int32, outgoingSlots: Int, incomingSlots: Int) {
        self.readDescriptor = readDescriptor
        self.writeDescriptor = writeDescriptor
        self.outgoingSlots = UInt64(outgoingSlots)
        self.incomingSlots = incomingSlots
        acknowledgeEvery = UInt64(min(incomingSlots, max(2, incomingSlots / 2)))
        pending = .allocate(capacity: incomingSlots)
        raw = .allocate(byteCount: 256 * HandoffRecord.bytes, alignment: 8)
    }

    deinit {
        pending.deallocate()
        raw.deallocate()
    }

    /// Applies the cell's wait strategy to the channel (after the hello, which blocks).
    func waitFromNowOn(_ options: EndpointOptions) throws {
        waiter = try ReadinessWaiter(options: options, readDescriptor: readDescriptor, writeDescriptor: writeDescriptor)
    }

    /// Drains (see `drain`) and closes the channel's descriptors.
    func close() {
        drain()
        waiter.close()
        Glibc.close(readDescriptor)
        if writeDescriptor != readDescriptor { Glibc.close(writeDescriptor) }
    }

    func sendHello(location: UInt64, slot: Int = 0) throws {
        try write(HandoffRecord(kind: HandoffRecord.hello, slot: UInt32(slot), length: 0, location: location, acknowledged: 0))
    }

    /// The peer's first record, read before any other can follow it.
    func receiveHello() throws -> HandoffRecord {
        var record = HandoffRecord(kind: 0, slot: 0, length: 0, location: 0, acknowledged: 0)
        let complete = try withUnsafeMutableBytes(of: &record) { try Descriptor.readExactly(readDescriptor, into: $0) }
        guard complete, record.kind == HandoffRecord.hello else {
            throw IPCError.setup("peer closed the control channel or sent no hello during set-up")
        }
        return record
    }

    /// The slot for the next outgoing message, once the peer has finished with its previous use.
    @inline(__always)
    func acquireSlot() throws -> Int {
        while sent &- releasedByPeer >= outgoingSlots {
            guard try readRecords() else {
                throw IPCError.peerClosed("peer closed the channel while holding all \(outgoingSlots) buffers")
            }
        }
        return Int(sent % outgoingSlots)
    }

    /// Announces the message in `slot`; `location` tells the peer where to find it.
    @inline(__always)
    func post(slot: Int, length: Int, location: UInt64) throws {
        try write(HandoffRecord(kind: HandoffRecord.message, slot: UInt32(slot), length: UInt64(length), location: location, acknowledged: finished))
        acknowledgedToPeer = finished
        sent &+= 1
    }

    /// The next message the peer announced, or nil when it closed the channel between messages.
    @inline(__always)
    func nextMessage() throws -> HandoffRecord? {
        while pendingCount == 0 {
            guard try readRecords() else {
                if rawFilled != 0 { throw IPCError.peerClosed("peer closed the channel in the middle of a descriptor") }
                return nil
            }
        }
        let record = pending[pendingHead]
        pendingHead = pendingHead + 1 == incomingSlots ? 0 : pendingHead + 1
        pendingCount -= 1
        return record
    }

    /// Returns the oldest received message's buffer to the peer.
    @inline(__always)
    func release() throws {
        finished &+= 1
        if finished &- acknowledgedToPeer >= acknowledgeEvery { try acknowledge() }
    }

    /// Before closing: returns what this side has finished with, then waits until the peer has
    /// finished with every message this side sent, since the peer reads them where they lie (for
    /// `cma` in this process's memory, which exiting would take away). Ends early if the peer is
    /// gone, or silent for a few seconds (a worker that failed closes too, and must not hang).
    func drain() {
        if finished != acknowledgedToPeer { try? acknowledge() }
        let deadline = MonotonicClock.now() + 5_000_000_000
        while releasedByPeer < sent {
            let now = MonotonicClock.now()
            guard now < deadline else { return }
            var waiting = pollfd(fd: readDescriptor, events: Int16(POLLIN), revents: 0)
            let ready: Int32
            do throws(Errno) {
                ready = try SystemCall.once { poll(&waiting, 1, Int32((deadline - now) / 1_000_000) + 1) }
            } catch .interrupted {
                continue  // with the time left
            } catch {
                return
            }
            guard ready > 0, (try? readRecords(waiting: false)) == true else { return }
        }
    }

    private func acknowledge() throws {
        try write(HandoffRecord(kind: HandoffRecord.acknowledgement, slot: 0, length: 0, location: 0, acknowledged: finished))
        acknowledgedToPeer = finished
    }

    private func write(_ record: HandoffRecord) throws {
        var record = record
        try withUnsafeBytes(of: &record) { try Descriptor.writeAll(writeDescriptor, $0, waiter: waiter) }
    }

    /// Waits (the cell's way) for at least one byte, then files every complete record:
    /// acknowledgements are applied at once, messages queued. Returns false at end-of-file; without
    /// `waiting`, returns true having read nothing when nothing is there.
    private func readRecords(waiting: Bool = true) throws -> Bool {
        var count: Int
        while true {
            do throws(Errno) {
                count = try SystemCall.retrying { Glibc.read(readDescriptor, raw.baseAddress! + rawFilled, raw.count - rawFilled) }
                break
            } catch .wouldBlock {
                guard waiting else { return true }
                try waiter.waitReadable(readDescriptor)
            } catch {
                throw IPCError.system("read", error, "control channel")
            }
        }
        if count == 0 { return false }
        rawFilled += count
        var offset = 0
        while rawFilled - offset >= HandoffRecord.bytes {
            let record = raw.loadUnaligned(fromByteOffset: offset, as: HandoffRecord.self)
            offset += HandoffRecord.bytes
            if record.acknowledged > releasedByPeer { releasedByPeer = record.acknowledged }
            switch record.kind {
            case HandoffRecord.message:
                guard pendingCount < incomingSlots else {
                    throw IPCError.peerClosed("peer announced more than its \(incomingSlots) buffers")
                }
                var tail = pendingHead + pendingCount
                if tail >= incomingSlots { tail -= incomingSlots }
                pending[tail] = record
                pendingCount += 1
            case HandoffRecord.acknowledgement:
                break
            default:
                throw IPCError.peerClosed("unexpected record kind \(record.kind) on the control channel")
            }
        }
        if offset > 0, offset < rawFilled {
            memmove(raw.baseAddress!, raw.baseAddress! + offset, rawFilled - offset)
        }
        rawFilled -= offset
        return true
    }
}
