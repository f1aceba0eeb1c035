import CIPCShim
import Glibc

/// The spinning ring's hand-off in closed-loop latency mode, where the ring has one slot that both
/// directions use and a stamp in the slot's first cache line says whose turn it is (see RingLayout).
///
/// A round trip is then one cache line bounced between the two CPUs, the hand-off the floor probe
/// times, so the per-message work of the ring itself must be as small as the harness's. The general
/// path (RingChannel.send/receive) keeps both rings' indices in shared memory, checks for space and
/// reloads the endpoint's fields around each store; here a send writes the message (through the
/// harness's `fill`) and stores its stamp, and a receive spins on the stamp and shows the slot to
/// `consume`. The ping-pong alternates strictly, so a side that has just received owns the slot: no
/// space check is needed. The indices count in this worker's private memory.
///
/// The consumer's reply is written into the slot the request came in (its header, by the harness),
/// as an in-place request/response would; the producer checks that the reply carries the
/// consumer's mark (MessageFormat.replyFlag), so a stamp flipped without an answer is caught.
struct SpinPingPong {
    /// The message, in the one slot.
    private let message: UnsafeMutableRawPointer
    /// The slot's stamp word, shared by both directions.
    private let stampWord: UnsafeMutablePointer<UInt32>
    /// The rings this side sends on and receives from (for their stamps).
    private let outgoing: Ring
    private let incoming: Ring
    /// How to wait between polls (pauses per poll, when to yield).
    private let notifier: SpinNotifier
    /// In private memory: [0] messages sent, [1] messages received.
    private let counters: UnsafeMutablePointer<UInt32>
    /// The largest message the slot holds.
    private let capacity: Int

    /// The one-slot exchange for a channel, or nil when it needs the general path: throughput or
    /// the copy path.
    init?(_ channel: RingChannel<SpinNotifier>, mode: Mode) {
        guard mode == .latency, !channel.copying, let outgoing = channel.outgoing, let incoming = channel.incoming,
              outgoing.ring.slotCount == 1
        else { return nil }
        self.outgoing = outgoing.ring
        self.incoming = incoming.ring
        message = outgoing.ring.slot(0)
        stampWord = outgoing.ring.stampWord(0)
        precondition(stampWord == incoming.ring.stampWord(0), "a one-slot ring's directions share the slot")
        notifier = outgoing.notifier
        capacity = outgoing.ring.messageCapacity
        counters = .allocate(capacity: 2)
        counters.initialize(repeating: 0, count: 2)
    }

    func deallocate() { counters.deallocate() }

    /// Spins until the slot's stamp word holds `stamp` (acquire: the message's bytes are then visible).
    @inline(__always)
    private func wait(for stamp: UInt32) {
        var spin = SpinNotifier.Budget()
        while ipcb_load_acquire_u32(stampWord) != stamp {
            notifier.pause(&spin)
        }
    }

    /// Writes the message in the slot through `fill`, then publishes it by storing its stamp
    /// (release: the bytes are visible before the stamp).
    @inline(__always)
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        precondition(size <= capacity, "message larger than the ring's slot")
        let index = counters[0]
        fill(UnsafeMutableRawBufferPointer(start: message, count: size))
        ipcb_store_release_u32(stampWord, outgoing.stamp(of: index))
        counters[0] = index &+ 1
    }

    /// Consumer: spins until the request's stamp is in the slot, shows it to `consume`, writes the
    /// answer over it through `answer` and publishes it with the reply stamp, then calls `arrived`:
    /// the answer is one store, which a clock read before it would hold back.
    @inline(__always)
    func receiveAndAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) -> Bool {
        precondition(size <= capacity, "message larger than the ring's slot")
        let index = counters[1]
        wait(for: incoming.stamp(of: index))
        counters[1] = index &+ 1
        if consume(UnsafeRawBufferPointer(start: message, count: size)) {
            let sent = counters[0]
            answer(UnsafeMutableRawBufferPointer(start: message, count: size))
            ipcb_store_release_u32(stampWord, outgoing.stamp(of: sent))
            counters[0] = sent &+ 1
        }
        arrived()
        return true
    }

    /// Spins until the peer's stamp is in the slot (acquire: its bytes are then visible), then shows
    /// the message to `consume` where it lies.
    @inline(__always)
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) -> Bool {
        precondition(size <= capacity, "message larger than the ring's slot")
        let index = counters[1]
        wait(for: incoming.stamp(of: index))
        consume(UnsafeRawBufferPointer(start: message, count: size))
        counters[1] = index &+ 1
        return true
    }
}

/// The spinning ring's endpoint in closed- and open-loop latency mode, in place: every hand-off
/// through the one slot (SpinPingPong). A class of its own, so the harness's loop is specialised for
/// it with each of the loop's closures called from one place, where the compiler inlines it.
final class SpinPingPongEndpoint: SharedRingEndpoint {
    let channel: RingChannel<SpinNotifier>
    let descriptors: [Int32] = []
    private let pingPong: SpinPingPong

    init(channel: RingChannel<SpinNotifier>, pingPong: SpinPingPong) {
        self.channel = channel
        self.pingPong = pingPong
    }

    deinit {
        channel.deallocate()
        pingPong.deallocate()
    }

    @inline(__always)
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        pingPong.send(size: size, fill: fill)
    }

    @inline(__always)
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        pingPong.receive(size: size, consume: consume)
    }

    @inline(__always)
    func receiveAndAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool {
        pingPong.receiveAndAnswer(size: size, consume: consume, answer: answer, arrived: arrived)
    }
}
