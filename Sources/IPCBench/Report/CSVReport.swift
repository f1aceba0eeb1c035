import Foundation

/// The results CSV: one row per cell, columns in a stable documented order (README "CSV schema"),
/// units in the column names. Rows are written and flushed as cells finish, so an interrupted run
/// leaves a well-formed file with every completed cell.
public final class CSVReport {
    public static let latencyStatistics = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max", "mean", "stddev"]

    public static let columns: [String] =
        ["run_id", "mechanism", "variant", "wait", "copies", "produce", "touch", "mode", "paced_rate_per_s", "message_bytes", "messages", "repetitions",
         "placement", "producer_cpu", "consumer_cpu", "memory_node", "pairs", "clients", "readers", "pair_sharing", "pair_cpus"]
        + latencyStatistics.map { "rtt_half_\($0)_ns" }
        + latencyStatistics.map { "one_way_\($0)_ns" }
        + ["msgs_per_s", "bytes_per_s", "cv", "ci95_low", "ci95_high", "headline_per_repetition", "drift_percent", "drifted", "pair_spread_percent"]
        + ["producer_user_cpu_s", "producer_sys_cpu_s", "consumer_user_cpu_s", "consumer_sys_cpu_s",
           "producer_cpu_ns_per_msg", "consumer_cpu_ns_per_msg", "cpu_ns_per_kib",
           "producer_cpu_utilization", "consumer_cpu_utilization",
           "voluntary_switches_per_msg", "involuntary_switches_per_msg"]
        + ["load_before", "steal_percent", "others_cpu_percent", "floor_rtt_before_ns", "floor_rtt_after_ns", "spin_pauses"]
        + ["remote"]
        + ["lost", "reordered", "corrupt", "status"]

    /// Columns that hold text; every other column holds a number (or nothing), and
    /// `headline_per_repetition` a list of numbers.
    static let textColumns: Set<String> = ["run_id", "mechanism", "variant", "wait", "produce", "touch", "mode", "placement", "pair_sharing", "pair_cpus", "drifted", "remote", "status"]

    /// The rows as JSON (`--json`): an array of objects with the CSV's column names, numbers as
    /// numbers, `headline_per_repetition` as an array, empty fields as null.
    public static func json(_ outcomes: [CellOutcome], runID: String) throws -> [UInt8] {
        let rows: [[String: Any]] = outcomes.map { outcome in
            var object: [String: Any] = [:]
            for (column, field) in zip(columns, fields(outcome, runID: runID)) {
                if field.isEmpty {
                    object[column] = NSNull()
                } else if column == "headline_per_repetition" {
                    object[column] = field.split(separator: " ").compactMap { Double($0) }
                } else if textColumns.contains(column) {
                    object[column] = field
                } else {
                    object[column] = Int(field).map { $0 as Any } ?? Double(field).map { $0 as Any } ?? field
                }
            }
            return object
        }
        return Array(try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
    }

    private let file: OutputFile
    public var path: String { file.path }
    public let runID: String

    /// Writes the header into `file`, which the run created for its results.
    public init(file: OutputFile, runID: String) throws {
        self.file = file
        self.runID = runID
        try write(line: Self.columns)
    }

    /// Appends one row; a row that cannot be written leaves the rows before it whole.
    public func append(_ outcome: CellOutcome) throws {
        try write(line: Self.fields(outcome, runID: runID))
    }

    private func write(line fields: [String]) throws {
        try file.append(Array((fields.map(Self.quoted).joined(separator: ",") + "\n").utf8))
    }

    public static func fields(_ outcome: CellOutcome, runID: String) -> [String] {
        let cell = outcome.cell
        func number(_ value: Double?, decimals: Int = 1) -> String {
            guard let value, value.isFinite else { return "" }
            return String(format: "%.\(decimals)f", value)
        }
        func latency(_ summary: LatencySummary?) -> [String] {
            guard let s = summary else { return latencyStatistics.map { _ in "" } }
            return [s.min, s.p50, s.p90, s.p99, s.p99_9, s.p99_99, s.max, s.mean, s.stddev].map { number($0) }
        }
        let cpu = { (value: Int?) in value.map(String.init) ?? "" }
        let measured = outcome.status.isOK || outcome.messages > 0
        // A placement this machine cannot offer has no CPUs to describe.
        let layout = cell.placement.unavailableReason == nil ? cell.layout ?? PairLayout(single: cell.placement) : nil
        let spinPauses: String = outcome.spinPausesPerPoll.map { String($0) } ?? ""
        return [
            runID, cell.mechanism.id, cell.variant, cell.wait.rawValue, String(cell.copies), cell.produce.rawValue, cell.touch.rawValue, cell.mode.rawValue,
            cell.pacedRate.map { number($0, decimals: 0) } ?? "",
            String(cell.messageBytes), measured ? String(outcome.messages) : "", String(outcome.repetitions),
            cell.placement.name, cpu(cell.placement.producerCPU ?? outcome.producerCPUSeen),
            cpu(cell.placement.consumerCPU ?? outcome.consumerCPUSeen), outcome.memoryNode.map(String.init) ?? "",
            String(cell.pairs), String(cell.clients), String(cell.readers), layout?.sharing.rawValue ?? "", layout?.text ?? "",
        ]
            + latency(outcome.halfRoundTrip) + latency(outcome.oneWay)
            + [number(outcome.messagesPerSecond), number(outcome.bytesPerSecond), number(outcome.coefficientOfVariation, decimals: 4),
               number(outcome.confidenceInterval?.lowerBound), number(outcome.confidenceInterval?.upperBound),
               outcome.headlinePerRepetition.map { number($0) }.joined(separator: " "),
               number(outcome.driftPercent), outcome.drifted.map { $0 ? "yes" : "no" } ?? "", number(outcome.pairSpreadPercent)]
            + cpuFields(outcome, number)
            + [number(outcome.machineLoad.loadAverageBefore, decimals: 2), number(outcome.machineLoad.stealPercent, decimals: 2),
               number(outcome.machineLoad.othersPercent, decimals: 2),
               number(outcome.floorBefore), number(outcome.floorAfter), spinPauses]
            + [DisplayText.csvCell(cell.remote ?? "")]
            + [String(outcome.lost), String(outcome.reordered), String(outcome.corrupt), DisplayText.csvCell(outcome.status.text)]
    }

    /// CPU cost: seconds per worker, ns per message (round trip in latency mode) and per KiB of payload,
    /// CPU-s per wall-s, and context switches per message of both workers together.
    static func cpuFields(_ outcome: CellOutcome, _ number: (Double?, Int) -> String) -> [String] {
        let producer = outcome.producerUsage, consumer = outcome.consumerUsage
        guard outcome.messages > 0, producer.wallNanoseconds > 0 || consumer.wallNanoseconds > 0 else {
            return Array(repeating: "", count: 11)
        }
        let messages = Double(outcome.messages)
        let kibibytes = messages * Double(outcome.cell.messageBytes) / 1024
        func seconds(_ ns: UInt64) -> String { number(Double(ns) / 1e9, 4) }
        return [
            seconds(producer.userNanoseconds), seconds(producer.systemNanoseconds),
            seconds(consumer.userNanoseconds), seconds(consumer.systemNanoseconds),
            number(Double(producer.totalNanoseconds) / messages, 1), number(Double(consumer.totalNanoseconds) / messages, 1),
            number(Double(producer.totalNanoseconds + consumer.totalNanoseconds) / kibibytes, 1),
            number(producer.utilization, 3), number(consumer.utilization, 3),
            number(Double(producer.voluntarySwitches + consumer.voluntarySwitches) / messages, 3),
            number(Double(producer.involuntarySwitches + consumer.involuntarySwitches) / messages, 3),
        ]
    }

    /// RFC 4180: quote a field holding a comma, quote or newline; double its quotes.
    public static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
