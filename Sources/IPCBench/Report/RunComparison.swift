import Foundation

/// `ipcbench compare`: two results files matched cell by cell, each cell judged from the figures of
/// its repetitions in both runs (`headline_per_repetition`) with a rank-sum test (`RankSumTest`).
public struct RunComparison: Sendable {
    /// How a cell changed from the baseline to the candidate.
    public enum Verdict: String, Codable, Sendable {
        case faster, slower
        case unchanged = "no significant change"
        /// Too few repetitions on one side for any difference to reach the significance level.
        case tooFewRepetitions = "too few repetitions"
        /// A file from before per-repetition figures were written: the ratio alone, unjudged.
        case notJudged = "not judged"
    }

    public struct CellChange: Codable, Sendable {
        public var mechanism: String
        public var variant: String
        public var wait: String
        public var mode: String
        public var messageBytes: Int
        public var placement: String
        /// `rtt_half_p50_ns` (latency) or `bytes_per_s` (throughput): the cell's headline figure.
        public var metric: String
        /// Median of each run's per-repetition figures (or the row's figure, for old files).
        public var baseline: Double
        public var candidate: Double
        /// Candidate ÷ baseline, with its interval at 1 - alpha (nil when the repetitions allow none).
        public var ratio: Double
        public var ratioLow: Double?
        public var ratioHigh: Double?
        public var pValue: Double?
        public var baselineRepetitions: Int
        public var candidateRepetitions: Int
        public var verdict: Verdict
        /// How much longer each message (or byte) takes in the candidate, in percent (negative: less).
        public var slowdownPercent: Double
    }

    public var cells: [CellChange] = []
    public let alpha: Double

    /// The default significance level. Lower than the usual 0.05 because a run compares some 200
    /// cells at once and two runs on a shared machine differ a little for real: on the Xeon guest,
    /// two default runs of one binary differed at 0.05 in 14 of 189 cells, at 0.01 in 4
    /// (results/vm-xeon-2026-12-05/compare/). With 5 repetitions a side, p < 0.01 means every
    /// repetition of one run beat every repetition of the other.
    public static let defaultAlpha = 0.01

    /// The columns two rows must agree on to be the same cell; see `valueBefore` for files from
    /// before some of them.
    public static let matchColumns = [
        "mechanism", "variant", "wait", "mode", "message_bytes", "placement", "pairs", "clients", "readers", "pair_sharing", "touch", "produce", "paced_rate_per_s",
    ]

    /// Matches the ok rows of `candidate` with those of `baseline` and judges each pair. Throws
    /// `IPCError.setup` for a malformed figure, naming the file, line and column.
    public init(baseline: ResultsFile, candidate: ResultsFile, alpha: Double = RunComparison.defaultAlpha) throws {
        self.alpha = alpha
        baselineConditions = Conditions(baseline)
        candidateConditions = Conditions(candidate)
        func key(_ row: [String: String]) -> String {
            Self.matchColumns.map { row[$0] ?? Self.valueBefore($0, row) }.joined(separator: "|")
        }
        var baselineRows: [String: (row: [String: String], line: Int)] = [:]
        for (index, row) in baseline.rows.enumerated() where row["status"] == "ok" && baselineRows[key(row)] == nil {
            baselineRows[key(row)] = (row, index + 2)
        }
        for (index, row) in candidate.rows.enumerated() where row["status"] == "ok" {
            guard let (base, baseLine) = baselineRows[key(row)] else { continue }
            let a = try Self.figures(base, file: baseline.path, line: baseLine)
            let b = try Self.figures(row, file: candidate.path, line: index + 2)
            guard let a, let b else { continue }
            cells.append(Self.judge(row, a, b, alpha: alpha))
        }
    }

    /// A row's per-repetition headline figures and whether they are per repetition (false: the
    /// row's single figure, from a file without the column); nil when the row has no figure.
    static func figures(_ row: [String: String], file: String, line: Int) throws -> (values: [Double], perRepetition: Bool)? {
        let metric = row["mode"] == "throughput" ? "bytes_per_s" : "rtt_half_p50_ns"
        if let text = row["headline_per_repetition"], !text.isEmpty {
            let values = text.split(separator: " ").map { Double($0) }
            guard values.allSatisfy({ $0 != nil && $0! > 0 && $0!.isFinite }) else {
                throw IPCError.setup("\(file), line \(line): headline_per_repetition '\(text)' is not a list of positive numbers")
            }
            return (values.map { $0! }, true)
        }
        guard let text = row[metric], !text.isEmpty else { return nil }
        guard let value = Double(text), value > 0, value.isFinite else {
            throw IPCError.setup("\(file), line \(line): \(metric) '\(text)' is not a positive number")
        }
        return ([value], false)
    }

    /// What a column added later means in a file from before it: rows all blocked and wrote every
    /// byte, one pair each, which shared nothing unless unpinned (the same pairs on fewer CPUs — a
    /// run under `taskset` — are another cell, `pair_sharing` tells them apart).
    static func valueBefore(_ column: String, _ row: [String: String]) -> String {
        switch column {
        case "wait": "block"
        case "produce": "write"
        case "pairs", "clients", "readers": "1"
        case "pair_sharing": row["placement"] == "unpinned" ? "unpinned" : "none"
        default: ""
        }
    }

    /// The placement, and the number of pairs when several ran at once: "cross-cpu, 4 pairs".
    static func placementText(_ row: [String: String]) -> String {
        let placement = row["placement"] ?? ""
        if let clients = row["clients"].flatMap({ Int($0) }), clients > 1 { return "\(placement), \(clients) clients" }
        if let readers = row["readers"].flatMap({ Int($0) }), readers > 1 { return "\(placement), \(readers) readers" }
        guard let pairs = row["pairs"].flatMap({ Int($0) }), pairs > 1 else { return placement }
        return "\(placement), \(pairs) pairs"
    }

    static func judge(_ row: [String: String], _ a: (values: [Double], perRepetition: Bool), _ b: (values: [Double], perRepetition: Bool), alpha: Double) -> CellChange {
        let throughput = row["mode"] == "throughput"
        let baseline = Statistics.median(a.values) ?? 0, candidate = Statistics.median(b.values) ?? 0
        var change = CellChange(
            mechanism: row["mechanism"] ?? "", variant: row["variant"] ?? "", wait: row["wait"] ?? "block", mode: row["mode"] ?? "",
            messageBytes: Int(row["message_bytes"] ?? "") ?? 0, placement: placementText(row),
            metric: throughput ? "bytes_per_s" : "rtt_half_p50_ns", baseline: baseline, candidate: candidate, ratio: candidate / baseline,
            baselineRepetitions: a.values.count, candidateRepetitions: b.values.count, verdict: .notJudged, slowdownPercent: 0)
        if a.perRepetition, b.perRepetition {
            if let (estimate, interval) = RankSumTest.ratio(a.values, b.values, alpha: alpha) {
                change.ratio = estimate
                change.ratioLow = interval?.lowerBound
                change.ratioHigh = interval?.upperBound
            }
            if RankSumTest.smallestPValue(a.values.count, b.values.count) >= alpha {
                change.verdict = .tooFewRepetitions
            } else {
                let p = RankSumTest.pValue(a.values, b.values)
                change.pValue = p
                let higher = change.ratio > 1
                change.verdict = p >= alpha ? .unchanged : (higher == throughput ? .faster : .slower)
            }
        }
        // Latency: time per message is the figure itself; throughput: its inverse.
        change.slowdownPercent = ((throughput ? 1 / change.ratio : change.ratio) - 1) * 100
        return change
    }

    /// What the machine was like during a run, from its rows: the median share of CPU time the host
    /// stole during a cell, and the median cache-line floor of its shared-memory cells.
    public struct Conditions: Sendable {
        public var stealPercent: Double?
        public var floorNanoseconds: Double?

        init(_ file: ResultsFile) {
            let ok = file.rows.filter { $0["status"] == "ok" }
            stealPercent = Statistics.median(ok.compactMap { Double($0["steal_percent"] ?? "") })
            floorNanoseconds = Statistics.median(ok.compactMap { Double($0["floor_rtt_before_ns"] ?? "") })
        }

        var text: String {
            [stealPercent.map { String(format: "%.1f%% CPU stolen by the host (median over cells)", $0) },
             floorNanoseconds.map { String(format: "cache-line floor %.0f ns", $0) }].compactMap { $0 }.joined(separator: ", ")
        }
    }

    public var baselineConditions: Conditions
    public var candidateConditions: Conditions

    /// A warning when the two runs met different machines: more stolen CPU time (2 points apart or
    /// more) or a cache-line floor 15% apart — the host moved or loaded the vCPUs, and every figure
    /// with them, which the test cannot tell from a change of the code.
    public var conditionsWarning: String? {
        let a = baselineConditions, b = candidateConditions
        let stealApart = (a.stealPercent ?? 0) - (b.stealPercent ?? 0)
        let floorApart = a.floorNanoseconds.flatMap { fa in b.floorNanoseconds.map { fb in abs(fb / fa - 1) } } ?? 0
        guard abs(stealApart) >= 2 || floorApart >= 0.15 else { return nil }
        return "the runs met different machines (A: \(a.text); B: \(b.text)): differences may be the host's, not the code's"
    }

    /// Cells significantly slower by more than `percent`: slower, and the ratio's whole interval
    /// beyond it (latency above 1 + percent, throughput below 1 / (1 + percent)), so that a cell is
    /// gated only when its repetitions show more than that slowdown, not merely some slowdown.
    public func regressions(beyond percent: Double) -> [CellChange] {
        let factor = 1 + percent / 100
        return cells.filter { cell in
            guard cell.verdict == .slower, let low = cell.ratioLow, let high = cell.ratioHigh else { return false }
            return cell.metric == "bytes_per_s" ? high < 1 / factor : low > factor
        }
    }

    /// One line: how many cells went which way.
    public var summary: String {
        let counts = Dictionary(grouping: cells, by: \.verdict).mapValues(\.count)
        let parts: [(Verdict, String)] = [(.slower, "slower"), (.faster, "faster"), (.unchanged, "no significant change"),
                                          (.tooFewRepetitions, "too few repetitions to tell"), (.notJudged, "not judged (no per-repetition figures)")]
        let text = parts.compactMap { verdict, label in counts[verdict].map { "\($0) \(label)" } }.joined(separator: ", ")
        return "\(cells.count) matching cells: \(text) (Mann-Whitney U, two-sided, alpha = \(alpha))."
    }
}
