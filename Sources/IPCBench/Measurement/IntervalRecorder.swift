/// The timed loops' front end to a LatencyHistogram: intervals in loop-clock ticks.
///
/// Short intervals, the common case, are counted tick by tick in a small private array (one compare
/// and one increment); longer ones go to the histogram. `finish()` folds the counts into the
/// histogram in nanoseconds: a record costs a few ns where HdrHistogram's own (bucket arithmetic,
/// a tick-to-ns conversion) would be a tenth of the spinning ring's round trip (results/DECISIONS.md).
///
/// The recorder keeps the first and the second half of a loop apart (`startSecondHalf()`), so the
/// harness can tell whether a figure drifted while the loop ran; switching halves swaps one pointer.
public struct IntervalRecorder {
    /// Intervals below this many ticks are counted exactly: ≈6.3 µs with the TSC at 2.6 GHz,
    /// 16 µs with the monotonic clock (1 tick = 1 ns), so the round trips and one-way delays of
    /// blocking hand-offs on one CPU need no HdrHistogram record either. 128 KiB of counts per half.
    public static let exactTicks = 16384
    /// Both halves' counts, the second half's `exactTicks` after the first's.
    private let counts: UnsafeMutablePointer<UInt64>
    /// The half being recorded.
    private var active: UnsafeMutablePointer<UInt64>
    private var inSecondHalf = false
    private let nanosecondsPerTick: Double
    private var firstHalf = LatencyHistogram()
    private var secondHalf = LatencyHistogram()

    public init(nanosecondsPerTick: Double) {
        self.nanosecondsPerTick = nanosecondsPerTick
        counts = .allocate(capacity: 2 * Self.exactTicks)
        counts.initialize(repeating: 0, count: 2 * Self.exactTicks)
        active = counts
    }

    /// Records the interval from `start` to `end` (0 if the end reads earlier: counters of two CPUs
    /// may differ by a few ticks).
    @inline(__always)
    public mutating func record(from start: UInt64, to end: UInt64) {
        let ticks = end > start ? end &- start : 0
        if ticks < UInt64(Self.exactTicks) {
            active[Int(truncatingIfNeeded: ticks)] &+= 1
        } else {
            recordLong(ticks)
        }
    }

    @inline(never)
    private mutating func recordLong(_ ticks: UInt64) {
        let nanoseconds = LoopClock.nanoseconds(ticks, perTick: nanosecondsPerTick)
        if inSecondHalf {
            secondHalf.record(nanoseconds)
        } else {
            firstHalf.record(nanoseconds)
        }
    }

    /// From now on, intervals count toward the second half.
    public mutating func startSecondHalf() {
        inSecondHalf = true
        active = counts + Self.exactTicks
    }

    /// Folds the exact counts into the histograms, releases them, and returns the first and the
    /// second half's distributions.
    public mutating func finishByHalf() -> [LatencyHistogram] {
        for ticks in 0..<Self.exactTicks {
            let nanoseconds = LoopClock.nanoseconds(UInt64(ticks), perTick: nanosecondsPerTick)
            if counts[ticks] > 0 { firstHalf.record(nanoseconds, count: counts[ticks]) }
            if counts[Self.exactTicks + ticks] > 0 { secondHalf.record(nanoseconds, count: counts[Self.exactTicks + ticks]) }
        }
        counts.deallocate()
        return [firstHalf, secondHalf]
    }

    /// Folds the exact counts into the histogram, releases them, and returns the whole distribution.
    public mutating func finish() -> LatencyHistogram {
        let halves = finishByHalf()
        var whole = halves[0]
        whole.merge(halves[1])
        return whole
    }
}
