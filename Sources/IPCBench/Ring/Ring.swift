import CIPCShim
import Glibc

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
