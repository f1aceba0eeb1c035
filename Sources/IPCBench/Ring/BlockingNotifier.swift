import CIPCShim
import Glibc
import SystemPackage

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
        // The shim returns the error number itself. EAGAIN: the word had moved on already.
        switch Errno(rawValue: ipcb_futex_wait(word, seen)) {
        case Errno(rawValue: 0), .wouldBlock, .interrupted: return
        case let error: throw IPCError.system("futex(FUTEX_WAIT)", error)
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
        while true {
            do throws(Errno) {
                // An eventfd read is all eight bytes or an error.
                _ = try SystemCall.retrying { waiter.read(descriptor, &count, 8) }
                return
            } catch .wouldBlock {
                try waiter.waitReadable(descriptor)
            } catch {
                throw IPCError.system("read(eventfd)", error)
            }
        }
    }

    @inline(__always)
    private static func wake(_ descriptor: Int32) throws {
        var one: UInt64 = 1
        do throws(Errno) {
            _ = try SystemCall.retrying { write(descriptor, &one, 8) }
        } catch {
            throw IPCError.system("write(eventfd)", error)
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
