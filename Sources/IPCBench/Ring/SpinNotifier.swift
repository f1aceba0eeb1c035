import CIPCShim
import Foundation
import Glibc

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

    /// The pace scripts/ab-spin found best (results/DECISIONS.md): on Intel, 3 pauses at every floor
    /// measured; elsewhere (the AMD EPYC guest) 1 pause where a line crosses in under 150 ns round
    /// trip, else 3. A PAUSE lasts very differently long on different cores, so the vendor matters.
    static func defaultPausesPerPoll(cacheLineRoundTrip: Double?, vendor: CPUVendor = .current) -> Int {
        if vendor == .intel { return 3 }
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

/// Who made this machine's CPUs (/proc/cpuinfo `vendor_id`), for the spinning waiters' pace.
enum CPUVendor: Sendable {
    case intel, amd, other

    static let current = CPUVendor(cpuinfo: SystemFacts.read("/proc/cpuinfo") ?? "")

    init(cpuinfo: String) {
        let line = cpuinfo.split(separator: "\n").first { $0.hasPrefix("vendor_id") }
        switch line?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) {
        case "GenuineIntel": self = .intel
        case "AuthenticAMD": self = .amd
        default: self = .other
        }
    }
}
