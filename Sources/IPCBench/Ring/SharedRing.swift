import CIPCShim
import Glibc

/// What every ring mechanism shares, whatever its segment: variants, sizing, the parent's
/// notification objects, and (RingEndpointFactory) building a worker's endpoint over a mapping.
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

    /// Parent side, for segments backed by a file descriptor (POSIX shm, a mapped file): sizes the
    /// object and allocates its memory now — a full file system fails here (ENOSPC), not with SIGBUS
    /// in a worker. With a memory node the pages are bound to it before they are allocated
    /// (MemoryBinding).
    static func sizeAndAllocate(descriptor: Int32, bytes: Int, memoryNode: Int?, context: String) throws {
        guard ftruncate(descriptor, off_t(bytes)) == 0 else { throw IPCError.lastSystemError("ftruncate", context) }
        try MemoryBinding.allocate(descriptor: descriptor, bytes: bytes, onNode: memoryNode, context: context) {
            let allocation = posix_fallocate(descriptor, 0, off_t(bytes))
            guard allocation == 0 else { throw IPCError.system(call: "posix_fallocate", errno: allocation, context: context) }
        }
    }

    /// Worker side, for segments reached by a descriptor: maps `bytes` of it, refusing an object too
    /// small for what it should hold (someone else's, or a truncated one).
    static func mapChecked(descriptor: Int32, bytes: Int, context: String, holding what: String) throws -> SegmentMapping {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw IPCError.lastSystemError("fstat", context) }
        guard Int(info.st_size) >= bytes else {
            throw IPCError.setup("\(context) holds \(info.st_size) bytes, \(what) needs \(bytes)")
        }
        return try SegmentMapping.map(descriptor: descriptor, bytes: bytes, context: context)
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

    /// The rendezvous parameter with the index of an inherited segment's descriptor among each
    /// worker's inherited descriptors (after the notification's).
    static let segmentDescriptorKey = "segment-descriptor"

    /// Parent side, for a segment without a name: each worker inherits its own duplicate of
    /// `descriptor`, after the notification's descriptors. (The harness closes each list after
    /// starting its worker, so the lists must not share descriptors.)
    static func handOver(segment descriptor: Int32, in rendezvous: inout Rendezvous) throws {
        let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { throw IPCError.lastSystemError("fcntl(F_DUPFD_CLOEXEC)", "ring segment") }
        precondition(rendezvous.producerDescriptors.count == rendezvous.consumerDescriptors.count)
        rendezvous.parameters[segmentDescriptorKey] = String(rendezvous.producerDescriptors.count)
        rendezvous.producerDescriptors.append(descriptor)
        rendezvous.consumerDescriptors.append(duplicate)
    }

    /// Worker side: the inherited descriptor of a segment without a name.
    static func inheritedSegment(_ rendezvous: Rendezvous) throws -> Int32 {
        guard let index = Int(try rendezvous.require(segmentDescriptorKey)), (0..<64).contains(index) else {
            throw IPCError.setup("rendezvous parameter '\(segmentDescriptorKey)' is not a descriptor index")
        }
        return Rendezvous.inheritedDescriptor(index)
    }

    /// Parent side, after both workers are gone: removes the notification's kernel objects (the
    /// inherited eventfds are closed by the harness with the other rendezvous descriptors).
    static func teardownNotification(_ rendezvous: Rendezvous) {
        if let set = rendezvous.parameters["sem-set"].flatMap({ Int32($0) }) {
            _ = ipcb_semctl_remove(set)
        }
    }
}
