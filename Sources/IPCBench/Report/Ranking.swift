/// "The answer first": per mode, message size and placement, the cells that ran from fastest to
/// slowest by their headline figure (p50 RTT/2, or bytes/s), each with its margin over the one before
/// and whether the repetitions show that difference — the rank-sum test `compare` uses.
public enum Ranking {
    public struct Entry: Sendable {
        public var name: String
        /// p50 RTT/2 in ns (latency) or bytes/s (throughput).
        public var figure: Double
        /// How many times slower than the entry before (1 for the first).
        public var margin: Double
        /// Whether this entry is significantly slower than the one before; nil for the first, or when
        /// the repetitions are too few to tell.
        public var apart: Bool?
    }

    public struct Group: Sendable {
        public var mode: Mode
        public var messageBytes: Int
        public var placement: String
        public var entries: [Entry]
    }

    public static func groups(_ outcomes: [CellOutcome], alpha: Double = RunComparison.defaultAlpha) -> [Group] {
        let measured = outcomes.filter { $0.status.isOK && figure($0) != nil }
        var order: [String] = []
        var members: [String: [CellOutcome]] = [:]
        for outcome in measured {
            let key = "\(outcome.cell.mode.rawValue)|\(outcome.cell.messageBytes)|\(outcome.cell.placement.name)|\(outcome.cell.pairs)|\(outcome.cell.clients)|\(outcome.cell.readers)"
            if members[key] == nil { order.append(key) }
            members[key, default: []].append(outcome)
        }
        return order.compactMap { key in
            guard let cells = members[key], let first = cells.first else { return nil }
            let throughput = first.cell.mode == .throughput
            // Fastest first: least time per message, or most bytes per second.
            let sorted = cells.sorted { throughput ? figure($0)! > figure($1)! : figure($0)! < figure($1)! }
            let repeated = Dictionary(grouping: cells, by: { $0.cell.mechanism.id }).mapValues(\.count)
            var entries: [Entry] = []
            for (index, outcome) in sorted.enumerated() {
                let cell = outcome.cell
                var name = repeated[cell.mechanism.id, default: 0] > 1 ? "\(cell.mechanism.id) \(cell.variant)" : cell.mechanism.id
                if cell.wait != .block { name += " (\(cell.wait.rawValue))" }
                var entry = Entry(name: name, figure: figure(outcome)!, margin: 1, apart: nil)
                if index > 0 {
                    let previous = sorted[index - 1]
                    entry.margin = throughput ? figure(previous)! / entry.figure : entry.figure / figure(previous)!
                    let a = previous.headlinePerRepetition, b = outcome.headlinePerRepetition
                    if RankSumTest.smallestPValue(a.count, b.count) < alpha {
                        entry.apart = RankSumTest.pValue(a, b) < alpha
                    }
                }
                entries.append(entry)
            }
            let pairs = first.cell.pairs > 1 ? ", \(first.cell.pairs) pairs" : first.cell.clients > 1 ? ", \(first.cell.clients) clients"
                : first.cell.readers > 1 ? ", \(first.cell.readers) readers" : ""
            return Group(mode: first.cell.mode, messageBytes: first.cell.messageBytes, placement: first.cell.placement.name + pairs, entries: entries)
        }
    }

    static func figure(_ outcome: CellOutcome) -> Double? {
        let value = outcome.cell.mode == .throughput ? outcome.bytesPerSecond : outcome.halfRoundTrip?.p50
        return value.flatMap { $0 > 0 ? $0 : nil }
    }

    /// The first `shown` entries of every group that ranks two or more, one line each.
    public static func render(_ groups: [Group], shown: Int = 5, alpha: Double = RunComparison.defaultAlpha) -> String {
        let ranked = groups.filter { $0.entries.count > 1 }
        guard !ranked.isEmpty else { return "" }
        var lines = [
            "Fastest first (p50 RTT/2 for latency, GB/s for throughput; \"<\": significantly slower than the one before, "
                + "\"≈\": not shown apart by the repetitions at alpha \(alpha), \",\": too few repetitions to tell):",
        ]
        let labels = ranked.map { "\($0.mode.rawValue) \(ByteSize.format($0.messageBytes)) \($0.placement)" }
        let width = labels.map(\.count).max() ?? 0
        for (group, label) in zip(ranked, labels) {
            var text = ""
            for (index, entry) in group.entries.prefix(shown).enumerated() {
                let value = group.mode == .throughput
                    ? String(format: "%.2f GB/s", entry.figure / 1e9) : ConsoleTable.duration(entry.figure)
                if index > 0 {
                    text += entry.apart.map { $0 ? " < " : " ≈ " } ?? ", "
                }
                text += "\(entry.name) \(value)"
                if index > 0 { text += String(format: " ×%.2f", entry.margin) }
            }
            if group.entries.count > shown { text += " … (\(group.entries.count - shown) more)" }
            lines.append("  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + text)
        }
        return lines.joined(separator: "\n")
    }
}
