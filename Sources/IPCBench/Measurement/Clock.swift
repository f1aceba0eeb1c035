import CIPCShim

/// The one clock every timestamp in a run uses: CLOCK_MONOTONIC in nanoseconds. It is shared by all
/// processes of a host, which is what lets the consumer compute one-way delays from the producer's
/// embedded send time.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 { ipcb_now_ns() }

    /// Cost of one clock read, measured by timing back-to-back reads; written to the run metadata.
    public static func measureOverhead(reads: Int = 1_000_000) -> TimerOverhead {
        var smallestStep = UInt64.max
        let start = now()
        var previous = start
        for _ in 0..<reads {
            let current = now()
            let step = current &- previous
            if step > 0, step < smallestStep { smallestStep = step }
            previous = current
        }
        let perRead = Double(previous - start) / Double(reads)
        return TimerOverhead(nanosecondsPerRead: perRead, smallestStepNanoseconds: smallestStep == .max ? 0 : smallestStep)
    }
}

public struct TimerOverhead: Codable, Sendable {
    /// Mean cost of one clock_gettime(CLOCK_MONOTONIC) call.
    public var nanosecondsPerRead: Double
    /// The smallest non-zero difference between consecutive reads: the clock's effective resolution.
    public var smallestStepNanoseconds: UInt64
}
