import CIPCShim
import Glibc

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
        let tail = ipcb_load_relaxed_u32(side.ring.tail)
        try side.notifier.waitForData(side.ring, tail: tail)
        try take(from: side, at: tail, size: size, consume: consume)
        return true
    }

    /// Hands the message at `tail`, known to be in its slot, to `consume` and releases the slot.
    @inline(__always)
    func take(from side: RingSide<Notifier>, at tail: UInt32, size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws {
        let ring = side.ring
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
