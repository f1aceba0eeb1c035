/// Whether the machine was busy around a cell: the 1-minute load average before its repetitions
/// started, and the share of CPU time the hypervisor stole while they ran (/proc/loadavg, /proc/stat).
public struct MachineLoad: Sendable {
    public var loadAverageBefore: Double?
    public var stealPercent: Double?

    public init(loadAverageBefore: Double? = nil, stealPercent: Double? = nil) {
        self.loadAverageBefore = loadAverageBefore
        self.stealPercent = stealPercent
    }

    /// Jiffies from the aggregate "cpu" line of /proc/stat: (steal, total).
    struct CPUTimes {
        var steal: UInt64
        var total: UInt64

        static func read() -> CPUTimes? {
            guard let text = SystemFacts.read("/proc/stat"),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
            else { return nil }
            let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            // user nice system idle iowait irq softirq steal …
            guard fields.count >= 8 else { return nil }
            return CPUTimes(steal: fields[7], total: fields.prefix(8).reduce(0, +))
        }
    }

    /// Starts observing: call `observe` when the repetition is done.
    static func begin() -> (load: Double?, times: CPUTimes?) {
        let load = SystemFacts.read("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) }
        return (load, CPUTimes.read())
    }

    /// What was seen around one repetition: the load average before it, and the jiffies the
    /// hypervisor stole out of all that passed while it ran.
    struct Observation {
        var loadBefore: Double?
        var stolen: UInt64 = 0
        var elapsed: UInt64 = 0
    }

    static func observe(_ begun: (load: Double?, times: CPUTimes?)) -> Observation {
        var observation = Observation(loadBefore: begun.load)
        if let before = begun.times, let after = CPUTimes.read(), after.total > before.total {
            observation.stolen = after.steal &- before.steal
            observation.elapsed = after.total - before.total
        }
        return observation
    }

    /// A cell's load over its repetitions: the highest load average seen before one, and the share
    /// of CPU time stolen over all of them.
    init(combining observations: [Observation]) {
        loadAverageBefore = observations.compactMap(\.loadBefore).max()
        let elapsed = observations.reduce(0) { $0 + $1.elapsed }
        stealPercent = elapsed > 0 ? Double(observations.reduce(0) { $0 + $1.stolen }) / Double(elapsed) * 100 : nil
    }

    /// A cell worth a second look: noisy across repetitions, or run while the host stole CPU time.
    public static func noiseWarning(_ outcome: CellOutcome) -> String? {
        var reasons: [String] = []
        if let cv = outcome.coefficientOfVariation, cv > 0.10 { reasons.append(String(format: "cv %.0f%%", cv * 100)) }
        if let steal = outcome.machineLoad.stealPercent, steal > 5 { reasons.append(String(format: "%.0f%% CPU stolen by the host", steal)) }
        if let load = outcome.machineLoad.loadAverageBefore, load > Double(SystemFacts.onlineCPUs.count) {
            reasons.append(String(format: "load %.1f before the cell", load))
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: ", ")
    }
}
