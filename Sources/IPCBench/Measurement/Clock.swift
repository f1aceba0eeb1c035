import CIPCShim
import Foundation

/// CLOCK_MONOTONIC in nanoseconds: the clock of deadlines, timeouts, pacing and throughput intervals,
/// shared by all processes of a host. (Closed-loop latency loops use LoopClock.)
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 { ipcb_now_ns() }
}

public struct TimerOverhead: Codable, Sendable {
    /// Mean cost of one read (clock_gettime(CLOCK_MONOTONIC), or RDTSC for the TSC loop clock).
    public var nanosecondsPerRead: Double
    /// The smallest non-zero difference between consecutive reads.
    public var smallestStepNanoseconds: UInt64
    /// The most common non-zero difference between consecutive reads: the clock's resolution in
    /// practice (its update step, or one read's cost when that is longer). It can be far coarser
    /// than the smallest step: this VM's TSC mostly advances 26 ticks (10 ns) at a time with an
    /// occasional step of 1, so single intervals, and percentiles of them, come in ≈10 ns steps.
    public var typicalStepNanoseconds: Double?
}

/// What the timed loops read time from, behind a protocol so that the loop arithmetic can be tested
/// against a scripted clock. The loops read only through it.
public protocol TimedLoopClock {
    /// A reading in ticks, for latency intervals and send times.
    func now() -> UInt64
    /// Nanoseconds per tick, for converting intervals (IntervalRecorder).
    var nanosecondsPerTick: Double { get }
    /// A duration in ticks.
    func ticks(nanoseconds: UInt64) -> UInt64
    /// CLOCK_MONOTONIC in ns: loop start and end, deadlines, and the throughput interval, whose two
    /// ends are read by different workers.
    func monotonicNow() -> UInt64
    /// Paced sends: returns at tick `time` (ticks of a clock whose ticks are CLOCK_MONOTONIC ns).
    func wait(until time: UInt64)
}

/// The clock of the timed latency loops: the time-stamp counter where the kernel itself keeps time
/// with it, else CLOCK_MONOTONIC.
///
/// A ping-pong's producer reads it once per round trip and its consumer once per message, and
/// between two spinning CPUs a round trip is only ~60–300 ns here: clock_gettime costs ~25–40 ns a
/// call (more right after a cache-line transfer), RDTSC ~7 ns. The kernel uses the TSC as its clocksource only when the
/// counter is invariant and synchronised across CPUs, so a send time read on one CPU and an arrival
/// time read on another still give a true one-way delay. Both workers of a run use the parent's one
/// calibration, so their ticks convert to nanoseconds alike; only differences are ever converted.
public struct LoopClock: TimedLoopClock, Codable, Sendable, Equatable {
    /// True: ticks are TSC cycles; false: ticks are CLOCK_MONOTONIC nanoseconds.
    public var usesTimeStampCounter: Bool
    public var nanosecondsPerTick: Double

    public static let monotonic = LoopClock(usesTimeStampCounter: false, nanosecondsPerTick: 1)

    /// This host's loop clock, decided and calibrated once per process.
    public static let host: LoopClock = timeStampCounterIsUsable ? calibrateTimeStampCounter() : .monotonic

    @inline(__always)
    public func now() -> UInt64 { usesTimeStampCounter ? ipcb_read_tsc() : ipcb_now_ns() }

    @inline(__always)
    public func monotonicNow() -> UInt64 { ipcb_now_ns() }

    public func wait(until time: UInt64) {
        // Pacer sleeps until CLOCK_MONOTONIC times, so paced send times must be in that clock.
        precondition(!usesTimeStampCounter, "paced sends need the monotonic loop clock")
        Pacer.wait(until: time)
    }

    /// A difference of two `now()` readings in nanoseconds, rounded to the nearest.
    @inline(__always)
    public func nanoseconds(_ ticks: UInt64) -> UInt64 {
        usesTimeStampCounter ? Self.nanoseconds(ticks, perTick: nanosecondsPerTick) : ticks
    }

    /// `ticks` at `perTick` ns each, rounded to the nearest ns.
    @inline(__always)
    public static func nanoseconds(_ ticks: UInt64, perTick: Double) -> UInt64 {
        perTick == 1 ? ticks : UInt64((Double(ticks) * perTick).rounded())
    }

    /// Nanoseconds from `start` to `end`, read on the same or on different CPUs; 0 if `end` reads
    /// earlier (counters of two CPUs may differ by a few ticks), rather than a wrapped-around value.
    @inline(__always)
    public func nanoseconds(from start: UInt64, to end: UInt64) -> UInt64 {
        end > start ? nanoseconds(end &- start) : 0
    }

    /// A duration in ticks.
    public func ticks(nanoseconds: UInt64) -> UInt64 {
        usesTimeStampCounter ? UInt64((Double(nanoseconds) / nanosecondsPerTick).rounded()) : nanoseconds
    }

    /// For the metadata: which clock, at what rate.
    public var description: String {
        usesTimeStampCounter
            ? String(format: "TSC via RDTSC, %.4f GHz (calibrated against CLOCK_MONOTONIC)", 1 / nanosecondsPerTick)
            : "clock_gettime(CLOCK_MONOTONIC)"
    }

    /// Mean cost of one read, and the smallest and most common steps between consecutive reads.
    public func measureOverhead(reads: Int = 1_000_000) -> TimerOverhead {
        // Steps of up to `countedSteps` ticks are counted one by one to find the most common one.
        let countedSteps = 1024
        var stepCounts = [Int](repeating: 0, count: countedSteps)
        let start = now()
        var previous = start
        var smallestStep = UInt64.max
        for _ in 0..<reads {
            let current = now()
            let step = current &- previous
            if step > 0, step < smallestStep { smallestStep = step }
            if step < UInt64(countedSteps) { stepCounts[Int(step)] += 1 }
            previous = current
        }
        let commonest = stepCounts.indices.dropFirst().max { stepCounts[$0] < stepCounts[$1] }
        return TimerOverhead(
            nanosecondsPerRead: Double(nanoseconds(previous &- start)) / Double(reads),
            smallestStepNanoseconds: smallestStep == .max ? 0 : max(1, nanoseconds(smallestStep)),
            typicalStepNanoseconds: commonest.flatMap { stepCounts[$0] > 0 ? Double($0) * nanosecondsPerTick : nil })
    }

    /// x86-64 with an invariant TSC (constant_tsc, nonstop_tsc) that the kernel keeps time with.
    public static var timeStampCounterIsUsable: Bool {
        #if arch(x86_64)
        let clocksource = SystemFacts.read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        guard clocksource?.trimmingCharacters(in: .whitespacesAndNewlines) == "tsc",
              let cpuinfo = SystemFacts.read("/proc/cpuinfo"),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let set = Set(flags.split(separator: " ").map(String.init))
        return set.contains("constant_tsc") && set.contains("nonstop_tsc")
        #else
        return false
        #endif
    }

    /// Counts TSC ticks across 20 ms of CLOCK_MONOTONIC (each end read between two clock reads, so
    /// the pairing error is a clock read's cost: ~1e-6 of the interval).
    static func calibrateTimeStampCounter() -> LoopClock {
        func pair() -> (nanoseconds: Double, ticks: UInt64) {
            let before = ipcb_now_ns()
            let ticks = ipcb_read_tsc()
            let after = ipcb_now_ns()
            return ((Double(before) + Double(after)) / 2, ticks)
        }
        let start = pair()
        usleep(20_000)
        let end = pair()
        guard end.ticks > start.ticks, end.nanoseconds > start.nanoseconds else { return .monotonic }
        return LoopClock(usesTimeStampCounter: true, nanosecondsPerTick: (end.nanoseconds - start.nanoseconds) / Double(end.ticks - start.ticks))
    }
}
