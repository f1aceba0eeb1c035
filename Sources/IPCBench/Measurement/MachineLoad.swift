import Glibc

/// Whether the machine was busy around a cell: the 1-minute load average before its repetitions
/// started, the share of CPU time the hypervisor stole while they ran, and the share other
/// processes used (/proc/loadavg, /proc/stat, and this run's own CPU time).
public struct MachineLoad: Sendable {
    public var loadAverageBefore: Double?
    public var stealPercent: Double?
    /// CPU time used by processes outside this run while the cell ran, in percent of all the CPU
    /// time that passed. Unlike the load average it does not count the run's own workers, which
    /// with `--pairs` alone can load every CPU.
    public var othersPercent: Double?

    public init(loadAverageBefore: Double? = nil, stealPercent: Double? = nil, othersPercent: Double? = nil) {
        self.loadAverageBefore = loadAverageBefore
        self.stealPercent = stealPercent
        self.othersPercent = othersPercent
    }

    /// Jiffies from the aggregate "cpu" line of /proc/stat, and this run's own CPU time.
    struct CPUTimes {
        var steal: UInt64
        var idle: UInt64
        var total: UInt64
        /// This process and its reaped workers (every worker of a repetition is reaped within it).
        var ownNanoseconds: UInt64

        static func read() -> CPUTimes? {
            guard let text = SystemFacts.read("/proc/stat"),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
            else { return nil }
            let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            // user nice system idle iowait irq softirq steal …
            guard fields.count >= 8 else { return nil }
            func nanoseconds(_ who: Int32) -> UInt64 {
                var usage = rusage()
                getrusage(__rusage_who_t(who), &usage)
                return [usage.ru_utime, usage.ru_stime].reduce(0) { $0 + UInt64($1.tv_sec) * 1_000_000_000 + UInt64($1.tv_usec) * 1000 }
            }
            return CPUTimes(
                steal: fields[7], idle: fields[3] + fields[4], total: fields.prefix(8).reduce(0, +),
                ownNanoseconds: nanoseconds(RUSAGE_SELF.rawValue) + nanoseconds(RUSAGE_CHILDREN.rawValue))
        }
    }

    /// Starts observing: call `observe` when the repetition is done.
    static func begin() -> (load: Double?, times: CPUTimes?) {
        let load = SystemFacts.read("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) }
        return (load, CPUTimes.read())
    }

    /// What was seen around one repetition: the load average before it, and the jiffies that passed
    /// while it ran: stolen by the hypervisor, and busy in processes outside this run.
    struct Observation {
        var loadBefore: Double?
        var stolen: UInt64 = 0
        var others: Double = 0
        var elapsed: UInt64 = 0
    }

    static func observe(_ begun: (load: Double?, times: CPUTimes?)) -> Observation {
        var observation = Observation(loadBefore: begun.load)
        if let before = begun.times, let after = CPUTimes.read(), after.total > before.total {
            observation.stolen = after.steal &- before.steal
            observation.elapsed = after.total - before.total
            let busy = Double(observation.elapsed) - Double(after.idle &- before.idle) - Double(observation.stolen)
            let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
            let own = Double(after.ownNanoseconds &- before.ownNanoseconds) / 1e9 * ticksPerSecond
            observation.others = max(0, busy - own)
        }
        return observation
    }

    /// A cell's load over its repetitions: the highest load average seen before one, and the shares
    /// of CPU time stolen and used by others over all of them.
    init(combining observations: [Observation]) {
        loadAverageBefore = observations.compactMap(\.loadBefore).max()
        let elapsed = observations.reduce(0) { $0 + $1.elapsed }
        stealPercent = elapsed > 0 ? Double(observations.reduce(0) { $0 + $1.stolen }) / Double(elapsed) * 100 : nil
        othersPercent = elapsed > 0 ? observations.reduce(0) { $0 + $1.others } / Double(elapsed) * 100 : nil
    }

    /// Other processes' share above which a cell is flagged: jiffies are 10 ms, so a short
    /// repetition rounds a little either way.
    public static let othersThresholdPercent = 10.0

    /// A cell worth a second look: noisy across repetitions, or run while the host stole CPU time
    /// or other processes used a share of the CPUs.
    public static func noiseWarning(_ outcome: CellOutcome) -> String? {
        var reasons: [String] = []
        if let cv = outcome.coefficientOfVariation, cv > 0.10 { reasons.append(String(format: "cv %.0f%%", cv * 100)) }
        if let steal = outcome.machineLoad.stealPercent, steal > 5 { reasons.append(String(format: "%.0f%% CPU stolen by the host", steal)) }
        if let others = outcome.machineLoad.othersPercent, others > othersThresholdPercent {
            reasons.append(String(format: "%.0f%% of the CPU time used by other processes", others))
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: ", ")
    }
}
