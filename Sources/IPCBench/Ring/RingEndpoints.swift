import CIPCShim
import Glibc

/// A ring endpoint: one concrete final class per notifier (below), because a generic class's
/// conformance is dispatched unspecialised through `any MessageEndpoint`; a concrete class gets the
/// timed loops specialised for its notifier, with the notifier's calls inlined.
protocol SharedRingEndpoint: SharedMemoryEndpoint {
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

    /// The whole segment: what `--memory-node` binds and the worker checks.
    var sharedRegion: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: channel.mapping.base, count: channel.mapping.bytes) }
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
