import CIPCShim
import Glibc

/// A single-producer / single-consumer ring of message slots in one shared segment, used by the
/// shm-posix, shm-sysv and mmap-file mechanisms (which differ only in how the segment is created and
/// mapped).
///
/// Segment layout (offsets in bytes):
///
///     0                     header: magic, segment size, slot size, slot count, ring count
///     64 + 256 × r          ring r's control block, one 64-byte cache line each for
///                           +0   head (UInt32, written only by the producer) and producerWaiting
///                           +64  tail (UInt32, written only by the consumer) and consumerWaiting
///                           +128 sem_t counting full slots, +192 sem_t counting empty slots
///     4096                  the slots, each `slotBytes` long: a 16-byte slot header whose first
///                           UInt32 is the slot's stamp, then the message
///
/// Ring 0 carries messages to the consumer; ring 1 (latency mode only) carries the replies. head and
/// tail are free-running UInt32 counters; the slot count is a power of two so `counter & mask`
/// stays right across their wrap-around.
///
/// Both rings index the same slots: in latency mode (a ping-pong, one message in flight) the reply
/// to message i travels in the slot message i came in, as a request/response over shared memory
/// would, so one exchange touches the same cache lines in both directions. That matters to the
/// spinning variant: bouncing one line between two CPUs costs about half of what writing one line
/// each way does (cacheline_pingpong LINES=1 vs 2 in ../shared/reference).
///
/// The stamp is how the spinning variant publishes a message: the producer of ring r stores
/// `stamp(index, r)` into the slot after writing the message, and its consumer polls that stamp
/// rather than the head index. A small message and its stamp share one cache line, so a hand-off
/// moves one line between the CPUs, as in a bare cache-line ping-pong, instead of a line for the
/// index and another for the data. The ring number is in the stamp's low bit, so a reply's stamp
/// can never pass for the next request's. (The blocking notifiers ignore the stamp.)
public struct RingLayout: Equatable, Sendable {
    /// Upper bound on slots per ring, so small messages do not make a huge ring.
    public static let defaultMaximumSlots = 4096
    /// Slots in latency mode: a ping-pong has one message in flight, and with one slot every exchange
    /// bounces the same cache lines between the two CPUs. Cycling through 8 slots cost ~1.6× as much
    /// per round trip here, and through 4096 small slots (1 MiB, beyond L2) far more.
    public static let latencySlots = 1
    /// Slots per ring in throughput mode: at least this many, so the producer can run ahead...
    public static let minimumSlots = 8
    /// ...or, when more, enough slots for this many bytes.
    public static let targetRingBytes = 2 << 20

    static let lineBytes = 64
    static let headerBytes = 64
    static let controlBytes = 256
    // Within a control block: each index with the flag its writer raises, then the two semaphores.
    static let headOffset = 0
    static let producerWaitingOffset = 4
    static let tailOffset = 64
    static let consumerWaitingOffset = 68
    static let fullOffset = 128
    static let emptyOffset = 192
    static let slotsOffset = 4096
    /// Bytes before the message in every slot: the stamp, padded so the message stays 16-byte aligned.
    public static let slotHeaderBytes = 16
    static let magic: UInt64 = 0x3147_4E52_4243_5049 // "IPCBRNG1", little-endian

    /// Bytes per slot: the slot header plus the message, rounded up to a cache line so every slot
    /// starts on one. The ring is sized to fit the message: a message larger than a slot cannot occur.
    public let slotBytes: Int
    /// Slots per ring, a power of two.
    public let slotCount: Int
    /// 2 in latency mode (one ring per direction, sharing the slots), 1 in throughput mode.
    public let ringCount: Int

    public var ringBytes: Int { slotCount * slotBytes }
    /// The largest message a slot holds.
    public var messageCapacity: Int { slotBytes - Self.slotHeaderBytes }
    public var segmentBytes: Int { Self.slotsOffset + ringBytes }

    /// The default ring for a message size and mode: one slot in latency mode; in throughput mode 8, or
    /// enough for 2 MiB when that is more. At most `maximumSlots`, rounded down to a power of two.
    public init(messageBytes: Int, mode: Mode, maximumSlots: Int = defaultMaximumSlots) {
        let slotBytes = (Self.slotHeaderBytes + max(messageBytes, 1) + Self.lineBytes - 1) / Self.lineBytes * Self.lineBytes
        let slots = mode == .latency ? Self.latencySlots : max(Self.minimumSlots, Self.targetRingBytes / slotBytes)
        let wanted = min(slots, max(1, maximumSlots))
        self.init(slotBytes: slotBytes, slotCount: 1 << (Int.bitWidth - 1 - wanted.leadingZeroBitCount), ringCount: mode == .latency ? 2 : 1)
    }

    init(slotBytes: Int, slotCount: Int, ringCount: Int) {
        self.slotBytes = slotBytes
        self.slotCount = slotCount
        self.ringCount = ringCount
    }

    /// The largest message whose throughput ring (minimum slots) fits in `availableBytes`, for
    /// `messageLimit()`; a latency ring needs less.
    static func largestMessage(fitting availableBytes: Int) -> Int {
        max(0, max(0, (availableBytes - slotsOffset) / minimumSlots) / lineBytes * lineBytes - slotHeaderBytes)
    }

    // MARK: Rendezvous

    func store(into parameters: inout [String: String]) {
        parameters["ring-slot-bytes"] = String(slotBytes)
        parameters["ring-slots"] = String(slotCount)
        parameters["rings"] = String(ringCount)
    }

    init(_ rendezvous: Rendezvous) throws {
        guard let slotBytes = Int(try rendezvous.require("ring-slot-bytes")),
              let slotCount = Int(try rendezvous.require("ring-slots")),
              let ringCount = Int(try rendezvous.require("rings")),
              slotBytes > Self.slotHeaderBytes, slotBytes % Self.lineBytes == 0, slotCount > 0, slotCount & (slotCount - 1) == 0,
              slotCount <= Int(Int32.max), (1...2).contains(ringCount)
        else { throw IPCError.setup("malformed ring layout in the rendezvous: \(rendezvous.parameters)") }
        self.init(slotBytes: slotBytes, slotCount: slotCount, ringCount: ringCount)
    }

    // MARK: Segment

    private var headerWords: [UInt64] {
        [Self.magic, UInt64(segmentBytes), UInt64(slotBytes), UInt64(slotCount), UInt64(ringCount)]
    }

    /// Parent side: writes the header and initialises each ring's indices and semaphores in a freshly
    /// created (zero-filled) segment, before either worker maps it.
    func initialize(segment base: UnsafeMutableRawPointer) throws {
        precondition(MemoryLayout<sem_t>.size <= Self.lineBytes)
        for (index, word) in headerWords.enumerated() {
            base.storeBytes(of: word, toByteOffset: index * 8, as: UInt64.self)
        }
        for index in 0..<ringCount {
            let control = Self.control(segment: base, ring: index)
            for offset in [Self.headOffset, Self.producerWaitingOffset, Self.tailOffset, Self.consumerWaitingOffset] {
                control.storeBytes(of: 0, toByteOffset: offset, as: UInt32.self)
            }
            let full = (control + Self.fullOffset).bindMemory(to: sem_t.self, capacity: 1)
            let empty = (control + Self.emptyOffset).bindMemory(to: sem_t.self, capacity: 1)
            guard sem_init(full, 1, 0) == 0, sem_init(empty, 1, UInt32(slotCount)) == 0 else {
                throw IPCError.lastSystemError("sem_init")
            }
        }
    }

    static func control(segment base: UnsafeMutableRawPointer, ring index: Int) -> UnsafeMutableRawPointer {
        base + headerBytes + index * controlBytes
    }

    /// Worker side: the mapped segment must be the one the parent initialised for this layout.
    func check(segment base: UnsafeMutableRawPointer, mappedBytes: Int) throws {
        guard mappedBytes >= segmentBytes else {
            throw IPCError.setup("shared segment holds \(mappedBytes) bytes, the ring needs \(segmentBytes)")
        }
        for (index, word) in headerWords.enumerated() where base.load(fromByteOffset: index * 8, as: UInt64.self) != word {
            throw IPCError.setup("shared segment header does not match the ring layout (word \(index))")
        }
    }
}
