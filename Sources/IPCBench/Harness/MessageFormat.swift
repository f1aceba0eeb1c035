/// The layout every message shares, whatever the mechanism:
///
///     offset 0: sequence number (UInt64, little-endian; bit 63 marks the end-of-stream marker,
///               bit 62 a reply, bits 55–60 the producer's client number under --clients;
///               UDP's retransmission count uses bits 48–54, its hello bit 61)
///     offset 8: send time (UInt64): in latency mode a reading of the task's loop clock (TSC ticks
///               or CLOCK_MONOTONIC ns, see LoopClock); in throughput mode unused by the consumer
///     offset 16…: payload: the message's pattern under produce=write, else left as it was
public enum MessageFormat {
    public static let headerBytes = 16
    public static let minimumMessageBytes = headerBytes
    /// Set in the sequence field of the end marker, whose other bits carry the number of timed
    /// messages the producer sent.
    public static let endMarker: UInt64 = 1 << 63
    /// Set in the sequence field of a ping-pong reply, whose other bits are the sequence number the
    /// consumer saw: a reply is written by the consumer, so a request handed back unanswered (an
    /// in-place slot whose stamp flipped with nothing written) never passes for one.
    public static let replyFlag: UInt64 = 1 << 62
    /// Under `--clients` each producer sets its client number here, so the one consumer checks every
    /// client's sequence on its own and routes each reply; 0 for a pair.
    public static let clientShift: UInt64 = 55
    /// Six bits: up to 64 clients (the CLI's limit).
    public static let clientMask: UInt64 = 0x3F << clientShift
    /// The bits a client number `index` occupies.
    @inline(__always)
    public static func clientTag(_ index: Int) -> UInt64 { UInt64(index) << clientShift }

    /// The client number a message's sequence field carries.
    @inline(__always)
    public static func client(ofSequence value: UInt64) -> Int { Int((value & clientMask) >> clientShift) }

    /// Writes a reply's header: the sequence number seen, flagged, and the request's send time.
    @inline(__always)
    public static func stampReply(_ reply: UnsafeMutableRawBufferPointer, answering sequence: UInt64, sentAt: UInt64) {
        stamp(reply, sequence: sequence | replyFlag, sentAt: sentAt)
    }

    @inline(__always)
    public static func stamp(_ message: UnsafeMutableRawBufferPointer, sequence: UInt64, sentAt: UInt64) {
        message.storeBytes(of: sequence.littleEndian, toByteOffset: 0, as: UInt64.self)
        message.storeBytes(of: sentAt.littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    @inline(__always)
    public static func sequence(of message: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(littleEndian: message.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
    }

    @inline(__always)
    public static func sentAt(of message: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(littleEndian: message.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// The pattern word at payload word `index` of message `sequence`: it changes with both, so a torn,
    /// stale or shifted payload does not match.
    @inline(__always)
    static func patternWord(sequence: UInt64, index: Int) -> UInt64 {
        (sequence &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(truncatingIfNeeded: index)
    }

    /// Writes every payload byte of message `sequence` (produce=write).
    public static func writePattern(_ message: UnsafeMutableRawBufferPointer, sequence: UInt64) {
        let payload = message.count - headerBytes
        let words = payload / 8
        for index in 0..<words {
            message.storeBytes(of: patternWord(sequence: sequence, index: index), toByteOffset: headerBytes + index * 8, as: UInt64.self)
        }
        for offset in (headerBytes + words * 8)..<message.count {
            message[offset] = UInt8(truncatingIfNeeded: sequence &+ UInt64(offset))
        }
    }

    public static func patternMatches(_ message: UnsafeRawBufferPointer, sequence: UInt64) -> Bool {
        let payload = message.count - headerBytes
        let words = payload / 8
        var mismatch: UInt64 = 0
        for index in 0..<words {
            mismatch |= message.loadUnaligned(fromByteOffset: headerBytes + index * 8, as: UInt64.self)
                ^ patternWord(sequence: sequence, index: index)
        }
        for offset in (headerBytes + words * 8)..<message.count {
            mismatch |= UInt64(message[offset] ^ UInt8(truncatingIfNeeded: sequence &+ UInt64(offset)))
        }
        return mismatch == 0
    }

    /// Reads every byte of the message once (as 8-byte words) and folds them into a checksum.
    @inline(__always)
    public static func readAll(_ message: UnsafeRawBufferPointer) -> UInt64 {
        let words = message.count / 8
        var sum: UInt64 = 0
        for index in 0..<words {
            sum &+= message.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
        }
        for offset in (words * 8)..<message.count {
            sum &+= UInt64(message[offset])
        }
        return sum
    }
}

/// Counts lost, reordered and duplicated sequence numbers as messages arrive.
public struct SequenceCheck: Sendable {
    public private(set) var expected: UInt64
    public private(set) var lost: UInt64 = 0
    public private(set) var reordered: UInt64 = 0

    public init(first: UInt64 = 0) {
        expected = first
    }

    @inline(__always)
    public mutating func observe(_ sequence: UInt64) {
        if sequence == expected {
            expected &+= 1
        } else if sequence > expected {
            lost &+= sequence - expected
            expected = sequence &+ 1
        } else {
            // Arrived after a later one: counted as lost when the gap was seen, so move it over.
            reordered &+= 1
            if lost > 0 { lost -= 1 }
        }
    }

    /// Called at the end with the producer's own count: messages never seen at all are lost too.
    public mutating func finish(sentCount: UInt64) {
        if sentCount > expected { lost &+= sentCount - expected }
    }
}
