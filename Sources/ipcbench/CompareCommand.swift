import ArgumentParser
import Foundation
import IPCBench

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two results CSVs cell by cell (regressions, or two machines): B ÷ A for each matching cell.",
        discussion: """
            Cells match on mechanism, variant, wait, mode, message size, placement, touch and paced rate. Latency \
            cells compare p50 and p99 one-way delay (RTT/2 where one-way is absent); throughput cells \
            compare bytes/s. Ratios beyond ±--threshold are marked; for latency > 1 is slower, for \
            throughput < 1 is slower.
            """)

    @Argument(help: "The baseline results CSV.")
    var baseline: String

    @Argument(help: "The results CSV to compare with it.")
    var candidate: String

    @Option(help: ArgumentHelp("Mark ratios further than this from 1 (e.g. 10%).", valueName: "percent"))
    var threshold = "10%"

    func run() throws {
        let limit = try Self.percent(threshold)
        let a: ResultsFile, b: ResultsFile
        do {
            a = try ResultsFile(path: baseline)
            b = try ResultsFile(path: candidate)
        } catch {
            throw ValidationError("\(error)")
        }
        let keys = ["mechanism", "variant", "wait", "mode", "message_bytes", "placement", "touch", "paced_rate_per_s"]
        // CSVs from before the wait axis have no `wait` column: their rows all blocked.
        func key(_ row: [String: String]) -> String { keys.map { row[$0] ?? ($0 == "wait" ? "block" : "") }.joined(separator: "|") }
        let baselineRows = Dictionary(a.rows.filter { $0["status"] == "ok" }.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })

        var table = [["mechanism", "variant", "wait", "mode", "size", "placement", "metric", "A", "B", "B/A", ""]]
        var matched = 0, flagged = 0
        for row in b.rows where row["status"] == "ok" {
            guard let base = baselineRows[key(row)] else { continue }
            matched += 1
            for (metric, column, unit) in Self.metrics(for: row) {
                guard let old = Double(base[column] ?? ""), let new = Double(row[column] ?? ""), old > 0 else { continue }
                let ratio = new / old
                let worse = row["mode"] == "throughput" ? ratio < 1 - limit : ratio > 1 + limit
                let better = row["mode"] == "throughput" ? ratio > 1 + limit : ratio < 1 - limit
                if worse || better { flagged += 1 }
                table.append([
                    row["mechanism"] ?? "", row["variant"] ?? "", row["wait"] ?? "block", row["mode"] ?? "", ByteSize.format(Int(row["message_bytes"] ?? "") ?? 0),
                    row["placement"] ?? "", metric, unit(old), unit(new), String(format: "%.3f", ratio), worse ? "slower" : better ? "faster" : "",
                ])
            }
        }
        guard matched > 0 else {
            throw ValidationError("no cell of '\(candidate)' matches one of '\(baseline)' (same mechanism, variant, wait, mode, size, placement, touch)")
        }
        print(TextTable.render(table))
        print("\n\(matched) matching cells; \(flagged) figures beyond ±\(threshold).")
    }

    static func metrics(for row: [String: String]) -> [(String, String, (Double) -> String)] {
        let time: (Double) -> String = { ConsoleTable.duration($0) }
        if row["mode"] == "throughput" {
            return [("GB/s", "bytes_per_s", { String(format: "%.3f", $0 / 1e9) })]
        }
        let prefix = (row["one_way_p50_ns"] ?? "").isEmpty ? "rtt_half" : "one_way"
        let label = prefix == "one_way" ? "1-way" : "RTT/2"
        return [("p50 \(label)", "\(prefix)_p50_ns", time), ("p99 \(label)", "\(prefix)_p99_ns", time)]
    }

    static func percent(_ text: String) throws -> Double {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(number), value >= 0 else {
            throw ValidationError("--threshold '\(text)' is not a percentage, e.g. 10%")
        }
        return value / 100
    }
}
