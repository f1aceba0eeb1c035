import Glibc

/// A shared ring whose two ends live in one process, over a private anonymous mapping: the ring's
/// own per-message cost (the enqueue and dequeue code of the timed loops, no waiting, no other
/// process), for Benchmarks/HotPaths. Each `exchange` enqueues one message and dequeues it again.
public final class RingLoopback {
    private let producer: RingChannel<SpinNotifier>
    private let consumer: RingChannel<SpinNotifier>
    private let messageBytes: Int

    /// A throughput-mode ring for `messageBytes`-byte messages: in place, or through private buffers
    /// on both sides (`copying`, the two-copy path).
    public init(messageBytes: Int, copying: Bool) throws {
        guard messageBytes >= MessageFormat.headerBytes else {
            throw IPCError.setup("a ring loopback message needs at least \(MessageFormat.headerBytes) bytes")
        }
        let layout = RingLayout(messageBytes: messageBytes, mode: .throughput)
        guard let base = mmap(nil, layout.segmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED
        else { throw IPCError.lastSystemError("mmap", "ring loopback") }
        let mapping = SegmentMapping(base: base, bytes: layout.segmentBytes, kind: .mmap)
        do {
            try layout.initialize(segment: base)
        } catch {
            mapping.unmap()
            throw error
        }
        func side(_ privateWords: UnsafeMutablePointer<UInt32>) -> RingSide<SpinNotifier> {
            privateWords.initialize(repeating: 0, count: 16)
            return RingSide(ring: Ring(segment: base, layout: layout, index: 0, seenPeerIndex: privateWords),
                            notifier: SpinNotifier(cacheLineRoundTrip: nil, yieldAfterNanoseconds: WaitStrategy.defaultSpinNanoseconds))
        }
        let producerWords = UnsafeMutablePointer<UInt32>.allocate(capacity: 16)
        let consumerWords = UnsafeMutablePointer<UInt32>.allocate(capacity: 16)
        producer = RingChannel(outgoing: side(producerWords), incoming: nil, copying: copying, messageBytes: messageBytes,
                               mapping: mapping, privateWords: producerWords)
        consumer = RingChannel(outgoing: nil, incoming: side(consumerWords), copying: copying, messageBytes: messageBytes,
                               mapping: mapping, privateWords: consumerWords)
        self.messageBytes = messageBytes
    }

    deinit {
        producer.unmap()
        producer.deallocate()
        consumer.deallocate()
    }

    /// Enqueues message `sequence` (its header stamped) and dequeues it; returns the sequence number
    /// the dequeue read, so a caller can check the ring handed back what went in.
    public func exchange(sequence: UInt64) throws -> UInt64 {
        try producer.send(size: messageBytes) { message in
            MessageFormat.stamp(message, sequence: sequence, sentAt: 0)
        }
        var received: UInt64 = 0
        _ = try consumer.receive(size: messageBytes) { message in
            received = MessageFormat.sequence(of: message)
        }
        return received
    }
}
