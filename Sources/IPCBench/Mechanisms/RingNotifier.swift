import CIPCShim
import Glibc

/// How the two sides of one shared-memory ring wait for each other and wake each other.
///
/// The producer calls `waitForSpace` before writing the slot at `head` and `publish` after it; the
/// consumer calls `waitForData` before reading the slot at `tail` and `release` after it. `publish`
/// and `release` also store the new index (each index has a single writer), with the ordering the
/// strategy needs. The endpoint is generic over the notifier, so these calls are direct.
protocol RingNotifier {
    func waitForSpace(_ ring: Ring, head: UInt32) throws
    func publish(_ ring: Ring, head: UInt32) throws
    func waitForData(_ ring: Ring, tail: UInt32) throws
    func release(_ ring: Ring, tail: UInt32) throws
}

/// POSIX unnamed semaphores (sem_init with pshared = 1) in the ring's control block, counting full
/// and empty slots. sem_post and an uncontended sem_wait stay in user space; only a side that has to
/// wait enters the kernel (futex). The semaphores order the slot's bytes; the indices are stored only
/// to find the next slot. Other wait strategies: sem_trywait (poll, spin-then-block), sem_clockwait (timed).
struct SemaphoreNotifier: RingNotifier {
    let waiter: TryWaiter

    @inline(__always)
    func waitForSpace(_ ring: Ring, head: UInt32) throws { try wait(ring.empty, for: "room in the ring") }

    @inline(__always)
    func publish(_ ring: Ring, head: UInt32) throws {
        ipcb_store_relaxed_u32(ring.head, head)
        guard sem_post(ring.full) == 0 else { throw IPCError.lastSystemError("sem_post") }
    }

    @inline(__always)
    func waitForData(_ ring: Ring, tail: UInt32) throws { try wait(ring.full, for: "message") }

    @inline(__always)
    func release(_ ring: Ring, tail: UInt32) throws {
        ipcb_store_relaxed_u32(ring.tail, tail)
        guard sem_post(ring.empty) == 0 else { throw IPCError.lastSystemError("sem_post") }
    }

    @inline(__always)
    private func wait(_ semaphore: UnsafeMutablePointer<sem_t>, for what: String) throws {
        try waiter.wait(for: what) { block, timeout in
            let result = if let timeout { ipcb_sem_wait_for(semaphore, timeout) } else if block { sem_wait(semaphore) } else { sem_trywait(semaphore) }
            if result == 0 { return true }
            if errno == EINTR || errno == EAGAIN || errno == ETIMEDOUT { return false }
            throw IPCError.lastSystemError(block ? "sem_wait" : "sem_trywait")
        }
    }
}

/// A System V semaphore set (semget/semop) created by the parent: per ring, one semaphore counts
/// full slots and one empty slots. Every semop is a system call, even when it need not wait. Other
/// wait strategies: IPC_NOWAIT (poll, spin-then-block), semtimedop (timed).
struct SystemVSemaphoreNotifier: RingNotifier {
    let set: Int32
    let full: UInt16
    let empty: UInt16
    let waiter: TryWaiter

    @inline(__always)
    func waitForSpace(_ ring: Ring, head: UInt32) throws { try take(empty, for: "room in the ring") }

    @inline(__always)
    func publish(_ ring: Ring, head: UInt32) throws {
        ipcb_store_relaxed_u32(ring.head, head)
        try operate(full, 1)
    }

    @inline(__always)
    func waitForData(_ ring: Ring, tail: UInt32) throws { try take(full, for: "message") }

    @inline(__always)
    func release(_ ring: Ring, tail: UInt32) throws {
        ipcb_store_relaxed_u32(ring.tail, tail)
        try operate(empty, 1)
    }

    /// Decrements `semaphore`, waiting in the strategy's way while it is 0.
    @inline(__always)
    private func take(_ semaphore: UInt16, for what: String) throws {
        try waiter.wait(for: what) { block, timeout in
            if ipcb_semop_one(set, semaphore, -1, block ? 0 : Int16(IPC_NOWAIT), timeout ?? .max) == 0 { return true }
            if errno == EINTR || errno == EAGAIN { return false }
            throw IPCError.lastSystemError("semop")
        }
    }

    @inline(__always)
    private func operate(_ semaphore: UInt16, _ delta: Int16) throws {
        var operation = sembuf(sem_num: semaphore, sem_op: delta, sem_flg: 0)
        while semop(set, &operation, 1) != 0 {
            if errno != EINTR { throw IPCError.lastSystemError("semop") }
        }
    }
}

/// Busy-polling with a pause instruction between reads: no system call on the path, the lowest
/// latency when each side has its own CPU.
///
/// The consumer polls the stamp of the slot it waits for, which the producer stores (release) right
/// after the message, in the message's own cache line: one line moves per hand-off, as in a bare
/// cache-line ping-pong (see RingLayout). The indices stay on lines each side writes alone: the producer reads the
/// tail only when the ring looks full (its last-seen copy is private), and nobody reads the head.
///
/// A waiter that never stops spinning would hold its CPU until the scheduler tick preempts it, and
/// when both workers share one CPU the peer it waits for cannot run meanwhile (milliseconds per
/// message). So the spin is bounded by time, as `--wait spin-then-block` bounds a descriptor's: after
/// `yieldAfterNanoseconds` of polling (`--spin-then-block`, from the first clock read) the waiter
/// calls sched_yield and starts again; on an otherwise idle CPU the yield returns at once. When the
/// placement pins both workers to one CPU (`EndpointOptions.peerSharesCPU`) the bound is 0: the
/// waiter yields after every unsuccessful poll, since only the peer can end its wait.
struct SpinNotifier: RingNotifier {
    /// Polls between two clock reads, minus one (a power of two, minus one): a clock read costs
    /// about as much as a poll, so the bound is checked about every microsecond.
    static let pollsPerClockReadMask: UInt32 = 63
    /// Pauses between two polls (see `init(cacheLineRoundTrip:)`).
    let pausesPerPoll: Int
    let yieldAfterNanoseconds: UInt64

    /// One wait's progress towards the yield.
    struct Budget {
        var polls: UInt32 = 0
        /// MonotonicClock time of the wait's first clock read (0: not read yet).
        var start: UInt64 = 0
    }

    /// A sparser poll pulls the line back from the writer less often, but notices a message later;
    /// which wins depends on the CPU's PAUSE and on how far apart the host put the two CPUs.
    /// `pausesPerPoll` (`--spin-pauses`) overrides `defaultPausesPerPoll`; the row's `spin_pauses`
    /// says which pace a cell ran at.
    init(cacheLineRoundTrip: Double?, pausesPerPoll override: Int? = nil, yieldAfterNanoseconds: UInt64) {
        pausesPerPoll = override ?? Self.defaultPausesPerPoll(cacheLineRoundTrip: cacheLineRoundTrip)
        self.yieldAfterNanoseconds = yieldAfterNanoseconds
    }

    /// 1 pause where a line crosses in under 150 ns round trip, else 3. Measured on a 2-vCPU AMD
    /// EPYC guest with scripts/ab-spin (results/vm-epyc-2026-12-03/ab-spin.txt in the history at
    /// 9b17b3a). On the Intel Xeon guest 1 pause was the worst and 2-3 the best (results/DECISIONS.md).
    static func defaultPausesPerPoll(cacheLineRoundTrip: Double?) -> Int {
        guard let roundTrip = cacheLineRoundTrip, roundTrip >= 150 else { return 1 }
        return 3
    }

    @inline(__always)
    func waitForSpace(_ ring: Ring, head: UInt32) throws {
        if head &- ring.seenPeerIndex.pointee < ring.slotCount { return }
        var spin = Budget()
        while true {
            let tail = ipcb_load_acquire_u32(ring.tail)
            ring.seenPeerIndex.pointee = tail
            if head &- tail < ring.slotCount { return }
            pause(&spin)
        }
    }

    @inline(__always)
    func publish(_ ring: Ring, head: UInt32) throws {
        // head is the index after the message just written.
        ipcb_store_release_u32(ring.stampWord(head &- 1), ring.stamp(of: head &- 1))
        ipcb_store_relaxed_u32(ring.head, head)
    }

    @inline(__always)
    func waitForData(_ ring: Ring, tail: UInt32) throws {
        // The acquire load of the stamp orders the message's bytes after it.
        let word = ring.stampWord(tail)
        let published = ring.stamp(of: tail)
        var spin = Budget()
        while ipcb_load_acquire_u32(word) != published {
            pause(&spin)
        }
    }

    @inline(__always)
    func release(_ ring: Ring, tail: UInt32) throws { ipcb_store_release_u32(ring.tail, tail) }

    /// Waits between two polls: `pausesPerPoll` pauses, and a yield once the wait has spun for
    /// `yieldAfterNanoseconds` (checked every `pollsPerClockReadMask + 1` polls; at once when it is 0).
    @inline(__always)
    func pause(_ spin: inout Budget) {
        for _ in 0..<pausesPerPoll { ipcb_cpu_relax() }
        spin.polls &+= 1
        if spin.polls & Self.pollsPerClockReadMask == 0 || yieldAfterNanoseconds == 0 {
            yieldIfDue(&spin)
        }
    }

    /// Kept out of line: the poll loop stays small, and this runs at most once a microsecond.
    @inline(never)
    func yieldIfDue(_ spin: inout Budget) {
        if yieldAfterNanoseconds == 0 {
            sched_yield()
            return
        }
        let now = MonotonicClock.now()
        if spin.start == 0 {
            spin.start = now
        } else if now &- spin.start >= yieldAfterNanoseconds {
            sched_yield()
            spin.start = MonotonicClock.now()
        }
    }
}

/// What a blocking, index-based notifier sleeps on: a futex on the index word itself, or an eventfd.
protocol RingSleeper {
    /// Sleeps until woken or until the peer's index no longer equals `seen` (spurious returns are fine).
    func sleepForData(_ ring: Ring, seen head: UInt32) throws
    func wakeForData(_ ring: Ring) throws
    func sleepForSpace(_ ring: Ring, seen tail: UInt32) throws
    func wakeForSpace(_ ring: Ring) throws
}

/// Index-based waiting with a system call only when a side must sleep: the waiter raises its
/// "waiting" flag, re-reads the peer's index and sleeps only if it is still unchanged; the peer stores
/// its index, then reads the flag and wakes the waiter if it is raised. Both pairs are seq_cst
/// (store, then load), so at least one side sees the other's store: no lost wake-up. A wake-up that
/// arrives after the waiter already saw the new index only causes a spurious return, which the loop
/// absorbs.
struct BlockingNotifier<Sleeper: RingSleeper>: RingNotifier {
    let sleeper: Sleeper

    @inline(__always)
    func waitForSpace(_ ring: Ring, head: UInt32) throws {
        if head &- ring.seenPeerIndex.pointee < ring.slotCount { return }
        var tail = ipcb_load_acquire_u32(ring.tail)
        if head &- tail >= ring.slotCount {
            while true {
                ipcb_store_seq_cst_u32(ring.producerWaiting, 1)
                tail = ipcb_load_seq_cst_u32(ring.tail)
                if head &- tail < ring.slotCount { break }
                try sleeper.sleepForSpace(ring, seen: tail)
            }
            ipcb_store_relaxed_u32(ring.producerWaiting, 0)
        }
        ring.seenPeerIndex.pointee = tail
    }

    @inline(__always)
    func publish(_ ring: Ring, head: UInt32) throws {
        ipcb_store_seq_cst_u32(ring.head, head)
        if ipcb_load_seq_cst_u32(ring.consumerWaiting) != 0 { try sleeper.wakeForData(ring) }
    }

    @inline(__always)
    func waitForData(_ ring: Ring, tail: UInt32) throws {
        if ring.seenPeerIndex.pointee != tail { return }
        var head = ipcb_load_acquire_u32(ring.head)
        if head == tail {
            while true {
                ipcb_store_seq_cst_u32(ring.consumerWaiting, 1)
                head = ipcb_load_seq_cst_u32(ring.head)
                if head != tail { break }
                try sleeper.sleepForData(ring, seen: head)
            }
            ipcb_store_relaxed_u32(ring.consumerWaiting, 0)
        }
        ring.seenPeerIndex.pointee = head
    }

    @inline(__always)
    func release(_ ring: Ring, tail: UInt32) throws {
        ipcb_store_seq_cst_u32(ring.tail, tail)
        if ipcb_load_seq_cst_u32(ring.producerWaiting) != 0 { try sleeper.wakeForSpace(ring) }
    }
}

/// futex(2) on the index words: FUTEX_WAIT sleeps only while the word still holds the value seen,
/// so a store that lands between the check and the sleep is not missed.
struct FutexSleeper: RingSleeper {
    @inline(__always)
    func sleepForData(_ ring: Ring, seen head: UInt32) throws { try Self.sleep(ring.head, head) }
    @inline(__always)
    func wakeForData(_ ring: Ring) throws { try Self.wake(ring.head) }
    @inline(__always)
    func sleepForSpace(_ ring: Ring, seen tail: UInt32) throws { try Self.sleep(ring.tail, tail) }
    @inline(__always)
    func wakeForSpace(_ ring: Ring) throws { try Self.wake(ring.tail) }

    @inline(__always)
    private static func sleep(_ word: UnsafeMutablePointer<UInt32>, _ seen: UInt32) throws {
        let result = ipcb_futex_wait(word, seen)
        guard result == 0 || result == EAGAIN || result == EINTR else {
            throw IPCError.system(call: "futex(FUTEX_WAIT)", errno: result, context: "")
        }
    }

    @inline(__always)
    private static func wake(_ word: UnsafeMutablePointer<UInt32>) throws {
        guard ipcb_futex_wake(word, 1) >= 0 else { throw IPCError.lastSystemError("futex(FUTEX_WAKE)") }
    }
}

/// eventfd(2) counters, one per direction of wake-up (data for the consumer, space for the
/// producer). An eventfd has no name another process could open, so the parent creates them and
/// both workers inherit them (Rendezvous descriptors). Reading resets the counter; a stale count only
/// causes one spurious return. Under a strategy other than `block` the reader's eventfd is
/// O_NONBLOCK (the writer shares the open file, and an eventfd write cannot fill it) and an empty
/// read waits through the reader's `ReadinessWaiter`.
struct EventSleeper: RingSleeper {
    let dataEvent: Int32
    let spaceEvent: Int32
    let dataWaiter: ReadinessWaiter
    let spaceWaiter: ReadinessWaiter

    @inline(__always)
    func sleepForData(_ ring: Ring, seen head: UInt32) throws { try Self.sleep(dataEvent, dataWaiter) }
    @inline(__always)
    func wakeForData(_ ring: Ring) throws { try Self.wake(dataEvent) }
    @inline(__always)
    func sleepForSpace(_ ring: Ring, seen tail: UInt32) throws { try Self.sleep(spaceEvent, spaceWaiter) }
    @inline(__always)
    func wakeForSpace(_ ring: Ring) throws { try Self.wake(spaceEvent) }

    @inline(__always)
    private static func sleep(_ descriptor: Int32, _ waiter: ReadinessWaiter) throws {
        var count: UInt64 = 0
        while waiter.read(descriptor, &count, 8) != 8 {
            if errno == EAGAIN {
                try waiter.waitReadable(descriptor)
            } else if errno != EINTR {
                throw IPCError.lastSystemError("read(eventfd)")
            }
        }
    }

    @inline(__always)
    private static func wake(_ descriptor: Int32) throws {
        var one: UInt64 = 1
        while write(descriptor, &one, 8) != 8 {
            if errno != EINTR { throw IPCError.lastSystemError("write(eventfd)") }
        }
    }
}

/// IORING_OP_MSG_RING (`uring-msg`), the io_uring analogue of the eventfd: each worker has its own
/// io_uring, a wake-up is a completion the waker posts into its peer's ring (one io_uring_enter), and
/// a sleeper waits in io_uring_enter until one is there, then takes all there are, as reading an
/// eventfd resets its count. The peer's ring is copied into this process once (pidfd_getfd; see
/// SharedRing.exchangeRingDescriptors). A completion's user data says what it signals (data or
/// space) and carries the index the waker had just stored. Both kinds arrive in one completion
/// queue, and a wake-up only says "look again": every one follows a store of the index it is about
/// (BlockingNotifier), so one taken while waiting for the other kind, or while posting, only causes a
/// spurious return or none, never a missed message.
struct MessageRingSleeper: RingSleeper {
    static let dataKind: UInt64 = 1 << 32
    static let spaceKind: UInt64 = 2 << 32
    let ownRing: CompletionRing
    /// The peer's ring, duplicated into this process once both workers exist (-1 until then); in
    /// private memory, so the sleeper stays a plain value.
    let peerRing: UnsafeMutablePointer<Int32>

    init(ownRing: CompletionRing) {
        self.ownRing = ownRing
        peerRing = .allocate(capacity: 1)
        peerRing.initialize(to: -1)
    }

    @inline(__always)
    func sleepForData(_ ring: Ring, seen head: UInt32) throws { try sleep() }
    @inline(__always)
    func wakeForData(_ ring: Ring) throws { try ownRing.post(Self.dataKind | UInt64(ipcb_load_relaxed_u32(ring.head)), toRing: peerRing.pointee) }
    @inline(__always)
    func sleepForSpace(_ ring: Ring, seen tail: UInt32) throws { try sleep() }
    @inline(__always)
    func wakeForSpace(_ ring: Ring) throws { try ownRing.post(Self.spaceKind | UInt64(ipcb_load_relaxed_u32(ring.tail)), toRing: peerRing.pointee) }

    @inline(__always)
    private func sleep() throws { try ownRing.awaitMessages() }
}

typealias FutexNotifier = BlockingNotifier<FutexSleeper>
typealias EventNotifier = BlockingNotifier<EventSleeper>
typealias MessageRingNotifier = BlockingNotifier<MessageRingSleeper>
