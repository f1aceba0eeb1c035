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

/// Pointers into one ring of a mapped segment (valid while the mapping lives), as one worker uses it.
struct Ring {
    let head: UnsafeMutablePointer<UInt32>
    let producerWaiting: UnsafeMutablePointer<UInt32>
    let tail: UnsafeMutablePointer<UInt32>
    let consumerWaiting: UnsafeMutablePointer<UInt32>
    let full: UnsafeMutablePointer<sem_t>
    let empty: UnsafeMutablePointer<sem_t>
    /// In this worker's private memory: the peer's index as last read (tail on the producer's side,
    /// head on the consumer's). Index-based notifiers check it first, so the peer's cache line is
    /// read only when the ring looked full (or empty): one cache-line transfer fewer per message.
    let seenPeerIndex: UnsafeMutablePointer<UInt32>
    let slots: UnsafeMutableRawPointer
    let slotBytes: Int
    /// The largest message a slot holds.
    let messageCapacity: Int
    let slotCount: UInt32
    let mask: UInt32
    /// The ring's number, carried in the low bit of its stamps.
    let stampTag: UInt32

    init(segment base: UnsafeMutableRawPointer, layout: RingLayout, index: Int, seenPeerIndex: UnsafeMutablePointer<UInt32>) {
        let control = RingLayout.control(segment: base, ring: index)
        head = (control + RingLayout.headOffset).bindMemory(to: UInt32.self, capacity: 1)
        producerWaiting = (control + RingLayout.producerWaitingOffset).bindMemory(to: UInt32.self, capacity: 1)
        tail = (control + RingLayout.tailOffset).bindMemory(to: UInt32.self, capacity: 1)
        consumerWaiting = (control + RingLayout.consumerWaitingOffset).bindMemory(to: UInt32.self, capacity: 1)
        full = (control + RingLayout.fullOffset).bindMemory(to: sem_t.self, capacity: 1)
        empty = (control + RingLayout.emptyOffset).bindMemory(to: sem_t.self, capacity: 1)
        self.seenPeerIndex = seenPeerIndex
        slots = base + RingLayout.slotsOffset
        stampTag = UInt32(index)
        slotBytes = layout.slotBytes
        messageCapacity = layout.messageCapacity
        slotCount = UInt32(layout.slotCount)
        mask = UInt32(layout.slotCount - 1)
    }

    /// Where the message in the slot a free-running index refers to starts.
    @inline(__always)
    func slot(_ index: UInt32) -> UnsafeMutableRawPointer {
        slots + (Int(index & mask) &* slotBytes &+ RingLayout.slotHeaderBytes)
    }

    /// The stamp word of the slot a free-running index refers to.
    @inline(__always)
    func stampWord(_ index: UInt32) -> UnsafeMutablePointer<UInt32> {
        (slots + Int(index & mask) &* slotBytes).assumingMemoryBound(to: UInt32.self)
    }

    /// What the stamp word holds once this ring's message `index` is in the slot. A stale value is a
    /// message of the other ring (the low bit differs) or one lap earlier. A fresh segment holds 0,
    /// which ring 0 reaches again only at index 2³¹ − 1, long after every slot was first written.
    @inline(__always)
    func stamp(of index: UInt32) -> UInt32 {
        (index &+ 1) &<< 1 | stampTag
    }
}

/// Copy path and notification strategy of a ring variant, named `<copy path>/<notification>`.
public struct SharedRingVariant: Equatable, Sendable {
    public enum CopyPath: String, Sendable {
        /// The producer fills a private buffer and copies it into the slot; the consumer copies the
        /// slot out into a private buffer: two copies, the fair analogue of a pipe.
        case copy
        /// The producer writes straight into the slot; the consumer reads it where it lies.
        case inPlace = "in-place"
    }

    public enum Notification: String, Sendable, CaseIterable {
        case semaphore, futex, eventfd, spin
        case systemVSemaphore = "sysv-sem"
        case uringMessage = "uring-msg"
    }

    public var copyPath: CopyPath
    public var notification: Notification

    public init(_ copyPath: CopyPath, _ notification: Notification) {
        self.copyPath = copyPath
        self.notification = notification
    }

    public init?(_ name: String) {
        let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let copyPath = CopyPath(rawValue: parts[0]), let notification = Notification(rawValue: parts[1]) else {
            return nil
        }
        self.init(copyPath, notification)
    }

    public var name: String { "\(copyPath.rawValue)/\(notification.rawValue)" }

    /// Every variant a ring mechanism can run: in place with each notification, and the copying path
    /// with a blocking and a spinning notification.
    public static let all: [SharedRingVariant] =
        [SharedRingVariant(.copy, .semaphore), SharedRingVariant(.copy, .spin)]
        + Notification.allCases.map { SharedRingVariant(.inPlace, $0) }

    static func parse(_ name: String, mechanism: String) throws -> SharedRingVariant {
        guard let variant = SharedRingVariant(name), all.contains(variant) else {
            throw IPCError.setup("\(mechanism) has no variant '\(name)'; variants: \(all.map(\.name).joined(separator: ", "))")
        }
        return variant
    }
}

/// One worker's mapping of the segment; undone by `unmap` when the endpoint closes.
struct SegmentMapping {
    enum Kind { case mmap, sysVAttach }
    let base: UnsafeMutableRawPointer
    let bytes: Int
    let kind: Kind

    func unmap() {
        switch kind {
        case .mmap: munmap(base, bytes)
        case .sysVAttach: shmdt(base)
        }
    }

    /// Maps `bytes` of an open file or shm object, shared and writable.
    static func map(descriptor: Int32, bytes: Int, context: String) throws -> SegmentMapping {
        guard let base = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), base != MAP_FAILED else {
            throw IPCError.lastSystemError("mmap", context)
        }
        return SegmentMapping(base: base, bytes: bytes, kind: .mmap)
    }
}

/// What the three ring mechanisms share: variants, the parent's notification objects, and building
/// a worker's endpoint over a mapped segment.
enum SharedRing {
    static let eventDescriptorsPerRing = 2

    static func copies(for variant: String) -> Int {
        SharedRingVariant(variant)?.copyPath == .inPlace ? 0 : 2
    }

    /// How a ring's notification can wait (`--wait`): semaphores can be tried and timed, an eventfd
    /// is a descriptor; the futex and spin variants are one waiting strategy each.
    static func waitStrategies(for variant: String) -> [WaitStrategy] {
        switch SharedRingVariant(variant)?.notification {
        case .semaphore, .systemVSemaphore: [.block, .poll, .spinThenBlock, .timed]
        case .eventfd: WaitStrategy.allCases.filter { $0 != .sigio }
        case .futex, .spin, .uringMessage, nil: [.block]
        }
    }

    static func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        if SharedRingVariant(variant)?.notification == .uringMessage,
           let reason = CompletionRing.unavailableReason(submissionPolling: false) ?? messageRingExchangeUnavailableReason {
            return reason
        }
        guard !waitStrategies(for: variant).contains(wait) else { return nil }
        switch SharedRingVariant(variant)?.notification {
        case .semaphore, .systemVSemaphore:
            return "a semaphore is not a file descriptor: there is nothing to epoll, read through io_uring or to raise SIGIO (poll and spin-then-block try it without waiting, timed bounds the wait)"
        case .eventfd:
            return "an eventfd raises no SIGIO (no O_ASYNC support)"
        case .futex:
            return "the futex variant only sleeps in FUTEX_WAIT; its polling form is the spin variant"
        case .uringMessage:
            return "the uring-msg variant waits in io_uring_enter for its peer's message; it has no readiness or polling form here"
        case .spin:
            return "the spin variant is itself polling: it spins on the slot and yields the CPU after --spin-then-block (after every poll when both workers share a CPU)"
        case nil:
            return "no ring variant '\(variant)'"
        }
    }

    /// The names of every variant except `defaults`, for `optionalVariants(for:)`.
    static func variantNames(excluding defaults: [String]) -> [String] {
        SharedRingVariant.all.map(\.name).filter { !defaults.contains($0) }
    }

    /// Size of the file or object the parent creates: the segment rounded up to whole pages.
    static func objectBytes(_ layout: RingLayout) -> Int {
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        return (layout.segmentBytes + page - 1) / page * page
    }

    /// Free bytes in the file system holding `path`, or nil.
    static func availableBytes(onFileSystemOf path: String) -> Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// MemAvailable from /proc/meminfo, in bytes: shared memory is RAM, whatever tmpfs would allow.
    static func availableMemoryBytes() -> Int? {
        guard let text = SystemFacts.read("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    /// The tightest of several bounds on the segment, as a message limit (nil when there is none).
    static func messageLimit(_ bounds: [(bytes: Int, source: String)]) -> MessageLimit? {
        guard let tightest = bounds.min(by: { $0.bytes < $1.bytes }) else { return nil }
        return MessageLimit(
            bytes: RingLayout.largestMessage(fitting: tightest.bytes),
            source: "\(tightest.source), for a ring of \(RingLayout.minimumSlots) slots")
    }

    static func memoryBound() -> [(bytes: Int, source: String)] {
        availableMemoryBytes().map { [($0, "MemAvailable \($0) bytes (/proc/meminfo)")] } ?? []
    }

    /// Refuses a segment the file system cannot hold, before anything is created.
    static func checkSpace(_ bytes: Int, onFileSystemOf path: String) throws {
        if let available = availableBytes(onFileSystemOf: path), bytes > available {
            throw IPCError.setup("the ring needs \(bytes) bytes but \(path) has \(available) bytes free")
        }
    }

    /// Parent side: maps a freshly created object, writes the ring's initial state and unmaps it.
    static func initialize(descriptor: Int32, layout: RingLayout, context: String) throws {
        let mapping = try SegmentMapping.map(descriptor: descriptor, bytes: layout.segmentBytes, context: context)
        defer { mapping.unmap() }
        try layout.initialize(segment: mapping.base)
    }

    /// Parent side, for segments backed by a file descriptor (POSIX shm, a mapped file): sizes and
    /// allocates it now — a full file system fails here (ENOSPC), not with SIGBUS in a worker — lays
    /// out the rings, and prepares the notification objects. With a memory node the pages are bound
    /// to it before they are allocated (MemoryBinding).
    static func prepareSegment(
        descriptor: Int32, bytes: Int, layout: RingLayout, variant: SharedRingVariant, context: String, parameters: [String: String],
        workspace: String, memoryNode: Int? = nil
    ) throws -> Rendezvous {
        guard ftruncate(descriptor, off_t(bytes)) == 0 else { throw IPCError.lastSystemError("ftruncate", context) }
        try MemoryBinding.allocate(descriptor: descriptor, bytes: bytes, onNode: memoryNode, context: context) {
            let allocation = posix_fallocate(descriptor, 0, off_t(bytes))
            guard allocation == 0 else { throw IPCError.system(call: "posix_fallocate", errno: allocation, context: context) }
        }
        try initialize(descriptor: descriptor, layout: layout, context: context)
        var rendezvous = Rendezvous(parameters: parameters)
        try prepareNotification(variant, layout, &rendezvous, workspace: workspace)
        return rendezvous
    }

    /// Parent side: creates the kernel objects the notification needs besides the segment, and the
    /// layout parameters, in `rendezvous`. Undoes what it made if it fails.
    static func prepareNotification(
        _ variant: SharedRingVariant, _ layout: RingLayout, _ rendezvous: inout Rendezvous, workspace: String
    ) throws {
        layout.store(into: &rendezvous.parameters)
        switch variant.notification {
        case .eventfd:
            // An eventfd cannot be opened by name, so the parent creates them and each worker inherits
            // its own duplicates: per ring, index 2r wakes the consumer (data), 2r + 1 the producer (space).
            // (The harness closes each list after starting its worker, so the lists must not share fds.)
            var events: [Int32] = []
            var duplicates: [Int32] = []
            do {
                for _ in 0..<(layout.ringCount * eventDescriptorsPerRing) {
                    let event = ipcb_eventfd_cloexec(0)
                    guard event >= 0 else { throw IPCError.lastSystemError("eventfd") }
                    events.append(event)
                    let duplicate = fcntl(event, F_DUPFD_CLOEXEC, 0)
                    guard duplicate >= 0 else { throw IPCError.lastSystemError("fcntl(F_DUPFD_CLOEXEC)") }
                    duplicates.append(duplicate)
                }
            } catch {
                (events + duplicates).forEach { close($0) }
                throw error
            }
            rendezvous.consumerDescriptors = events
            rendezvous.producerDescriptors = duplicates
        case .systemVSemaphore:
            let count = Int32(layout.ringCount * 2)
            let set = try OwnedNames.createSysV(ledger: workspace) { semget($0, count, $1) }
            guard set >= 0 else { throw IPCError.lastSystemError("semget") }
            for index in 0..<layout.ringCount {
                guard ipcb_semctl_setval(set, Int32(2 * index), 0) == 0,
                      ipcb_semctl_setval(set, Int32(2 * index + 1), Int32(layout.slotCount)) == 0
                else {
                    let failure = IPCError.lastSystemError("semctl(SETVAL)")
                    _ = ipcb_semctl_remove(set)
                    throw failure
                }
            }
            rendezvous.parameters["sem-set"] = String(set)
        case .uringMessage:
            // The workers exchange their pids and io_uring descriptor numbers over this pair: private to
            // the cell, so the peer is whoever inherited the other end.
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw IPCError.lastSystemError("socketpair")
            }
            rendezvous.consumerDescriptors = [pair[0]]
            rendezvous.producerDescriptors = [pair[1]]
        case .semaphore, .futex, .spin:
            break
        }
    }

    /// Parent side, after both workers are gone: removes the notification's kernel objects (the
    /// inherited eventfds are closed by the harness with the other rendezvous descriptors).
    static func teardownNotification(_ rendezvous: Rendezvous) {
        if let set = rendezvous.parameters["sem-set"].flatMap({ Int32($0) }) {
            _ = ipcb_semctl_remove(set)
        }
    }

    /// Worker side: checks and prefaults the mapped segment and builds this role's endpoint. Takes
    /// ownership of `mapping` (unmapped when the endpoint closes, or here if this fails).
    static func endpoint(
        mapping: SegmentMapping, layout: RingLayout, rendezvous: Rendezvous, options: EndpointOptions, role: Role, mechanism: String
    ) throws -> any MessageEndpoint {
        do {
            let variant = try SharedRingVariant.parse(options.variant, mechanism: mechanism)
            guard options.messageBytes <= layout.messageCapacity else {
                throw IPCError.setup("message of \(options.messageBytes) bytes does not fit the ring's slots of \(layout.messageCapacity) bytes")
            }
            try layout.check(segment: mapping.base, mappedBytes: mapping.bytes)
            // Fault every page in (writable) now, so no page fault lands in the timed loop.
            let fault = ipcb_prefault_writable(mapping.base, layout.segmentBytes)
            guard fault == 0 else { throw IPCError.system(call: "madvise(MADV_POPULATE_WRITE)", errno: fault, context: "shared ring") }

            let semaphoreSet = variant.notification == .systemVSemaphore ? Int32(try rendezvous.require("sem-set")) : -1
            guard let semaphoreSet else { throw IPCError.setup("malformed sem-set id in the rendezvous") }

            // Each ring's seen-peer-index word on its own cache line of private memory; indices start at 0.
            let privateWords = UnsafeMutablePointer<UInt32>.allocate(capacity: 16 * layout.ringCount)
            privateWords.initialize(repeating: 0, count: 16 * layout.ringCount)
            let rings = (0..<layout.ringCount).map {
                Ring(segment: mapping.base, layout: layout, index: $0, seenPeerIndex: privateWords + 16 * $0)
            }
            // Ring 0 carries messages to the consumer, ring 1 the replies to the producer.
            let outgoingIndex = role == .producer ? 0 : 1
            let incomingIndex = 1 - outgoingIndex
            func channel<Notifier: RingNotifier>(_ notifier: (Int) -> Notifier) -> RingChannel<Notifier> {
                RingChannel(
                    outgoing: outgoingIndex < rings.count ? RingSide(ring: rings[outgoingIndex], notifier: notifier(outgoingIndex)) : nil,
                    incoming: incomingIndex < rings.count ? RingSide(ring: rings[incomingIndex], notifier: notifier(incomingIndex)) : nil,
                    copying: variant.copyPath == .copy, messageBytes: options.messageBytes, mapping: mapping, privateWords: privateWords)
            }
            switch variant.notification {
            case .semaphore:
                let waiter = TryWaiter(options: options)
                return SemaphoreRingEndpoint(channel: channel { _ in SemaphoreNotifier(waiter: waiter) })
            case .spin:
                let notifier = SpinNotifier(
                    cacheLineRoundTrip: options.cacheLineRoundTripNanoseconds, pausesPerPoll: options.spinPausesPerPoll,
                    yieldAfterNanoseconds: options.peerSharesCPU ? 0 : options.spinThenBlockNanoseconds)
                let spinning = channel { _ in notifier }
                if let pingPong = SpinPingPong(spinning, mode: options.mode) {
                    return SpinPingPongEndpoint(channel: spinning, pingPong: pingPong)
                }
                return SpinRingEndpoint(channel: spinning)
            case .futex:
                return FutexRingEndpoint(channel: channel { _ in FutexNotifier(sleeper: FutexSleeper()) })
            case .eventfd:
                let events = (0..<(layout.ringCount * eventDescriptorsPerRing)).map { Rendezvous.inheritedDescriptor($0) }
                // This side reads two of them: data on the ring it receives from, space on the one it sends on.
                var waiters: [ReadinessWaiter] = []
                func waiter(_ event: Int32, readHere: Bool) throws -> ReadinessWaiter {
                    guard readHere else { return .blocking }
                    waiters.append(try ReadinessWaiter(options: options, readDescriptor: event, writeDescriptor: -1))
                    return waiters[waiters.count - 1]
                }
                let sleepers = try (0..<layout.ringCount).map { ring in
                    let data = events[ring * eventDescriptorsPerRing], space = events[ring * eventDescriptorsPerRing + 1]
                    return EventSleeper(
                        dataEvent: data, spaceEvent: space,
                        dataWaiter: try waiter(data, readHere: ring == incomingIndex),
                        spaceWaiter: try waiter(space, readHere: ring == outgoingIndex))
                }
                let notifiers = channel { ring in EventNotifier(sleeper: sleepers[ring]) }
                return EventRingEndpoint(channel: notifiers, events: events, waiters: waiters)
            case .uringMessage:
                let sleeper = MessageRingSleeper(ownRing: try CompletionRing(submissionPolling: false))
                return MessageRingEndpoint(
                    channel: channel { _ in MessageRingNotifier(sleeper: sleeper) }, sleeper: sleeper, socket: Rendezvous.inheritedDescriptor(0))
            case .systemVSemaphore:
                return SystemVSemaphoreRingEndpoint(channel: channel { ring in
                    SystemVSemaphoreNotifier(set: semaphoreSet, full: UInt16(2 * ring), empty: UInt16(2 * ring + 1), waiter: TryWaiter(options: options))
                })
            }
        } catch {
            mapping.unmap()
            throw error
        }
    }
}

/// An endpoint whose set-up ends with a step that needs the peer: the consumer's runs in `accept`,
/// once the producer exists, the producer's in `connect`.
protocol PeerSetUp {
    func completeWithPeer() throws
}

extension SharedRing {
    /// The consumer's listener for a ring endpoint (complete at once, unless it needs the peer).
    static func listener(_ endpoint: any MessageEndpoint) -> ImmediateListener {
        ImmediateListener {
            try (endpoint as? PeerSetUp)?.completeWithPeer()
            return endpoint
        }
    }

    /// The producer's ring endpoint, with any set-up step that needs the consumer done.
    static func connected(_ endpoint: any MessageEndpoint) throws -> any MessageEndpoint {
        do {
            try (endpoint as? PeerSetUp)?.completeWithPeer()
        } catch {
            endpoint.close()
            throw error
        }
        return endpoint
    }

    /// `uring-msg` set-up: gets the peer's io_uring descriptor over the cell's socket pair and
    /// returns it, checked to be an io_uring; closes the socket. The kernel refuses to pass an
    /// io_uring with SCM_RIGHTS, so each side sends its pid and ring descriptor number, allows the
    /// peer (and only it) ptrace access under Yama, says so, and copies the peer's ring with
    /// pidfd_getfd. Both sides send before they wait, so neither waits on the other; a peer that
    /// stops answering ends in a timeout.
    static func exchangeRingDescriptors(_ own: Int32, over socket: Int32) throws -> Int32 {
        defer { Glibc.close(socket) }
        var introduction: (Int32, Int32) = (getpid(), own)
        try sendRecord(&introduction, on: socket)
        var peer: (pid: Int32, ring: Int32) = (0, -1)
        try receiveRecord(&peer, on: socket)
        let allowing = ipcb_allow_tracer(peer.pid)
        // EINVAL: no Yama, nothing to allow. The peer learns of any other failure and says it.
        var allowed: Int32 = allowing == -EINVAL ? 0 : allowing
        try sendRecord(&allowed, on: socket)
        var peerAllowed: Int32 = 0
        try receiveRecord(&peerAllowed, on: socket)
        guard peerAllowed == 0 else {
            throw IPCError.system(call: "prctl(PR_SET_PTRACER)", errno: -peerAllowed, context: "the peer could not let this worker copy its io_uring")
        }
        let copy = ipcb_descriptor_of_process(peer.pid, peer.ring)
        // Withdraw the permission once both copies are made: the peer's copy of this ring is done
        // when its "copied" arrives.
        var copied: Int32 = copy >= 0 ? 0 : copy
        try sendRecord(&copied, on: socket)
        var peerCopied: Int32 = 0
        try receiveRecord(&peerCopied, on: socket)
        _ = ipcb_allow_tracer(0)
        guard copy >= 0 else {
            throw IPCError.system(call: "pidfd_getfd", errno: -copy, context: "the peer's io_uring (pid \(peer.pid), descriptor \(peer.ring))")
        }
        guard peerCopied == 0 else {
            Glibc.close(copy)
            throw IPCError.system(call: "pidfd_getfd", errno: -peerCopied, context: "the peer could not copy this worker's io_uring")
        }
        var link = [UInt8](repeating: 0, count: 64)
        let length = readlink("/proc/self/fd/\(copy)", &link, link.count)
        let target = length > 0 ? String(decoding: link[0..<length], as: UTF8.self) : "?"
        guard target == "anon_inode:[io_uring]" else {
            Glibc.close(copy)
            throw IPCError.setup("the peer's descriptor \(peer.ring) is not an io_uring (\(target))")
        }
        return copy
    }

    private static func sendRecord<Record>(_ record: inout Record, on socket: Int32) throws {
        let size = MemoryLayout<Record>.size
        while withUnsafeBytes(of: &record, { Glibc.send(socket, $0.baseAddress, size, 0) }) != size {
            if errno != EINTR { throw IPCError.lastSystemError("send", "io_uring descriptor exchange") }
        }
    }

    private static func receiveRecord<Record>(_ record: inout Record, on socket: Int32) throws {
        var ready = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        while true {
            let count = Glibc.poll(&ready, 1, Int32(exchangeTimeoutSeconds * 1000))
            if count > 0 { break }
            if count == 0 { throw IPCError.timeout("the peer did not answer the io_uring descriptor exchange within \(exchangeTimeoutSeconds) s") }
            if errno != EINTR { throw IPCError.lastSystemError("poll", "io_uring descriptor exchange") }
        }
        let size = MemoryLayout<Record>.size
        let count = withUnsafeMutableBytes(of: &record) { Glibc.recv(socket, $0.baseAddress, size, 0) }
        guard count == size else {
            throw count < 0 ? IPCError.lastSystemError("recv", "io_uring descriptor exchange")
                : IPCError.setup("the peer sent \(count) bytes where the io_uring descriptor exchange expects \(size)")
        }
    }

    static let exchangeTimeoutSeconds = 30

    /// Why the workers cannot copy each other's ring with pidfd_getfd here (Yama's policy), or nil.
    static let messageRingExchangeUnavailableReason =
        PtraceAccess.yamaUnavailableReason(for: "pidfd_getfd (which uring-msg needs to reach the peer's ring)")
}

/// One direction of a worker's endpoint.
struct RingSide<Notifier: RingNotifier> {
    let ring: Ring
    let notifier: Notifier
}

/// A worker's two rings and the send/receive logic over them. On the in-place path `fill` writes into
/// the slot and `consume` reads the slot before it is released back to the producer (so a torn or
/// overwritten slot shows up under touch=verify); on the copy path both go through private buffers.
///
/// Plain values only (pointers), so using it from an endpoint costs no reference counting; the
/// timed-path state lives in shared memory (each side re-reads its own index) or behind pointers,
/// so send/receive allocate nothing, take no locks and need no exclusivity checks.
struct RingChannel<Notifier: RingNotifier> {
    let outgoing: RingSide<Notifier>?
    let incoming: RingSide<Notifier>?
    let copying: Bool
    let sendBuffer: UnsafeMutableRawBufferPointer
    let receiveBuffer: UnsafeMutableRawBufferPointer
    let mapping: SegmentMapping
    let privateWords: UnsafeMutablePointer<UInt32>

    init(
        outgoing: RingSide<Notifier>?, incoming: RingSide<Notifier>?, copying: Bool, messageBytes: Int,
        mapping: SegmentMapping, privateWords: UnsafeMutablePointer<UInt32>
    ) {
        self.outgoing = outgoing
        self.incoming = incoming
        self.copying = copying
        self.mapping = mapping
        self.privateWords = privateWords
        let privateBytes = copying ? messageBytes : 0
        sendBuffer = .prefaulted(byteCount: privateBytes)
        receiveBuffer = .prefaulted(byteCount: privateBytes)
    }

    @inline(__always)
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        guard let side = outgoing, size <= side.ring.messageCapacity else { throw Self.misuse("send", size) }
        let ring = side.ring
        let head = ipcb_load_relaxed_u32(ring.head)
        if copying {
            let message = UnsafeMutableRawBufferPointer(start: sendBuffer.baseAddress, count: size)
            fill(message)
            try side.notifier.waitForSpace(ring, head: head)
            ring.slot(head).copyMemory(from: UnsafeRawPointer(message.baseAddress!), byteCount: size)
        } else {
            try side.notifier.waitForSpace(ring, head: head)
            fill(UnsafeMutableRawBufferPointer(start: ring.slot(head), count: size))
        }
        try side.notifier.publish(ring, head: head &+ 1)
    }

    @inline(__always)
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard let side = incoming, size <= side.ring.messageCapacity else { throw Self.misuse("receive", size) }
        let ring = side.ring
        let tail = ipcb_load_relaxed_u32(ring.tail)
        try side.notifier.waitForData(ring, tail: tail)
        if copying {
            receiveBuffer.baseAddress!.copyMemory(from: UnsafeRawPointer(ring.slot(tail)), byteCount: size)
            try side.notifier.release(ring, tail: tail &+ 1)
            consume(UnsafeRawBufferPointer(start: receiveBuffer.baseAddress, count: size))
        } else {
            // Consumed before the slot is released: the producer cannot overwrite it meanwhile.
            consume(UnsafeRawBufferPointer(start: ring.slot(tail), count: size))
            try side.notifier.release(ring, tail: tail &+ 1)
        }
        if let reverse = outgoing {
            // Two rings means a ping-pong (latency mode): each side sends one message, then waits for
            // one, so a message received proves the peer has consumed everything this side sent. The
            // next send then need not read the peer's tail, a line the peer writes every message.
            reverse.ring.seenPeerIndex.pointee = ipcb_load_relaxed_u32(reverse.ring.head)
        }
        return true
    }

    func unmap() { mapping.unmap() }

    func deallocate() {
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
        privateWords.deallocate()
    }

    private static func misuse(_ operation: String, _ size: Int) -> IPCError {
        .setup("shared ring \(operation) of \(size) bytes has no ring in that direction or does not fit its slots")
    }
}

/// A ring endpoint: one concrete final class per notifier (below), because a generic class's
/// conformance is dispatched unspecialised through `any MessageEndpoint`; a concrete class gets the
/// timed loops specialised for its notifier, with the notifier's calls inlined.
protocol SharedRingEndpoint: MessageEndpoint {
    associatedtype Notifier: RingNotifier
    var channel: RingChannel<Notifier> { get }
    /// Closes what the notification owns besides the segment (eventfds, io_uring instances).
    func closeNotification()
}

extension SharedRingEndpoint {
    @inline(__always)
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        try channel.send(size: size, fill: fill)
    }

    @inline(__always)
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        try channel.receive(size: size, consume: consume)
    }

    func close() {
        channel.unmap()
        closeNotification()
    }

    func closeNotification() {}
}

final class SemaphoreRingEndpoint: SharedRingEndpoint {
    let channel: RingChannel<SemaphoreNotifier>
    init(channel: RingChannel<SemaphoreNotifier>) { self.channel = channel }
    deinit { channel.deallocate() }
}

final class SystemVSemaphoreRingEndpoint: SharedRingEndpoint {
    let channel: RingChannel<SystemVSemaphoreNotifier>
    init(channel: RingChannel<SystemVSemaphoreNotifier>) { self.channel = channel }
    deinit { channel.deallocate() }
}

final class SpinRingEndpoint: SharedRingEndpoint {
    let channel: RingChannel<SpinNotifier>
    init(channel: RingChannel<SpinNotifier>) { self.channel = channel }
    deinit { channel.deallocate() }
}

final class FutexRingEndpoint: SharedRingEndpoint {
    let channel: RingChannel<FutexNotifier>
    init(channel: RingChannel<FutexNotifier>) { self.channel = channel }
    deinit { channel.deallocate() }
}

final class MessageRingEndpoint: SharedRingEndpoint, PeerSetUp {
    let channel: RingChannel<MessageRingNotifier>
    let sleeper: MessageRingSleeper
    /// The cell's socket pair end, until the ring descriptors are exchanged over it (then -1).
    private var socket: Int32
    init(channel: RingChannel<MessageRingNotifier>, sleeper: MessageRingSleeper, socket: Int32) {
        self.channel = channel
        self.sleeper = sleeper
        self.socket = socket
    }
    deinit { channel.deallocate() }

    func completeWithPeer() throws {
        let socket = self.socket
        self.socket = -1
        sleeper.peerRing.pointee = try SharedRing.exchangeRingDescriptors(sleeper.ownRing.descriptor, over: socket)
    }

    func closeNotification() {
        if socket >= 0 { Glibc.close(socket) }
        sleeper.ownRing.close()
        if sleeper.peerRing.pointee >= 0 { Glibc.close(sleeper.peerRing.pointee) }
        sleeper.peerRing.deallocate()
    }
}

final class EventRingEndpoint: SharedRingEndpoint {
    let channel: RingChannel<EventNotifier>
    /// The inherited eventfds, and the waiters of the two this side reads.
    let events: [Int32]
    let waiters: [ReadinessWaiter]
    init(channel: RingChannel<EventNotifier>, events: [Int32], waiters: [ReadinessWaiter]) {
        self.channel = channel
        self.events = events
        self.waiters = waiters
    }
    deinit { channel.deallocate() }

    func closeNotification() {
        waiters.forEach { $0.close() }
        events.forEach { _ = Glibc.close($0) }
    }
}
