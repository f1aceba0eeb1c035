import Glibc

/// CPU time and context switches a worker spent in its timed loop.
public struct CPUUsage: Codable, Sendable {
    public var userNanoseconds: UInt64 = 0
    public var systemNanoseconds: UInt64 = 0
    /// User + system from CLOCK_PROCESS_CPUTIME_ID: nanosecond-exact, unlike rusage's tick-based split.
    public var totalNanoseconds: UInt64 = 0
    public var voluntarySwitches: UInt64 = 0
    public var involuntarySwitches: UInt64 = 0
    /// Wall time of the same interval, so CPU-s per s (1.0 = one whole CPU busy) can be derived.
    public var wallNanoseconds: UInt64 = 0

    public static func + (left: CPUUsage, right: CPUUsage) -> CPUUsage {
        CPUUsage(
            userNanoseconds: left.userNanoseconds + right.userNanoseconds,
            systemNanoseconds: left.systemNanoseconds + right.systemNanoseconds,
            totalNanoseconds: left.totalNanoseconds + right.totalNanoseconds,
            voluntarySwitches: left.voluntarySwitches + right.voluntarySwitches,
            involuntarySwitches: left.involuntarySwitches + right.involuntarySwitches,
            wallNanoseconds: left.wallNanoseconds + right.wallNanoseconds)
    }

    /// CPU-seconds per wall-second over the interval.
    public var utilization: Double? {
        wallNanoseconds > 0 ? Double(totalNanoseconds) / Double(wallNanoseconds) : nil
    }
}

/// Snapshots resource usage at the start and end of a timed loop (two syscalls each, outside the
/// per-message path).
struct CPUMeter {
    private var startUsage = rusage()
    private var startCPU: UInt64 = 0
    private var startWall: UInt64 = 0
    private var started = false

    mutating func start() {
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &startUsage)
        startCPU = Self.processCPUTime()
        startWall = MonotonicClock.now()
        started = true
    }

    func finish() -> CPUUsage {
        guard started else { return CPUUsage() }
        let wall = MonotonicClock.now() &- startWall
        let cpu = Self.processCPUTime() &- startCPU
        var end = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &end)
        func nanoseconds(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1000 }
        return CPUUsage(
            userNanoseconds: nanoseconds(end.ru_utime) &- nanoseconds(startUsage.ru_utime),
            systemNanoseconds: nanoseconds(end.ru_stime) &- nanoseconds(startUsage.ru_stime),
            totalNanoseconds: cpu,
            voluntarySwitches: UInt64(end.ru_nvcsw - startUsage.ru_nvcsw),
            involuntarySwitches: UInt64(end.ru_nivcsw - startUsage.ru_nivcsw),
            wallNanoseconds: wall)
    }

    private static func processCPUTime() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
