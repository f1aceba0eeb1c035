/// Whether the machine was busy around a cell: the 1-minute load average before it started, and the
/// share of CPU time the hypervisor stole while it ran (from /proc/loadavg and /proc/stat).
public struct MachineLoad: Sendable {
    public var loadAverageBefore: Double?
    public var stealPercent: Double?

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

    /// Starts observing: call `finish` when the cell is done.
    static func begin() -> (load: Double?, times: CPUTimes?) {
        let load = SystemFacts.read("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) }
        return (load, CPUTimes.read())
    }

    static func finish(_ begun: (load: Double?, times: CPUTimes?)) -> MachineLoad {
        var result = MachineLoad(loadAverageBefore: begun.load)
        if let before = begun.times, let after = CPUTimes.read(), after.total > before.total {
            result.stealPercent = Double(after.steal - before.steal) / Double(after.total - before.total) * 100
        }
        return result
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
