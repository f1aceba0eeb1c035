import CIPCShim
import Glibc

extension SharedRing {
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
