import ArgumentParser
import Foundation
import IPCBench

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two results CSVs cell by cell and say which differences are real.",
        discussion: """
            Cells match on mechanism, variant, wait, mode, message size, placement, produce, touch and paced rate. \
            Each is judged on its headline figure (latency: p50 RTT/2; throughput: bytes/s), from the figure of \
            every repetition in both runs: a two-sided Mann-Whitney U test at --alpha says whether they differ, \
            and B/A is the median of all B÷A ratios with its interval at 1 - alpha. Fewer than 5 repetitions a side \
            cannot reach p < 0.01 (fewer than 4, p < 0.05): run with --repetitions 5 (the default) or more to compare.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json
    }

    @Argument(help: "The baseline results CSV (A).")
    var baseline: String

    @Argument(help: "The results CSV to compare with it (B).")
    var candidate: String

    @Option(help: ArgumentHelp("Significance level of the test (and 1 - alpha the coverage of the intervals).", valueName: "p"))
    var alpha = RunComparison.defaultAlpha

    @Option(help: ArgumentHelp(
        "Exit 1 when some cell is significantly slower by more than this — its whole interval beyond it (e.g. 10%: latency up more than 10%, or throughput down below 1/1.1) — listing those cells.",
        valueName: "percent"))
    var failOnRegression: String?

    @Option(help: "Output: a table to read, or csv or json with the same fields for other tools.")
    var format = Format.table

    func validate() throws {
        guard alpha > 0, alpha < 0.5 else { throw ValidationError("--alpha \(alpha) is out of range; allowed: above 0 and below 0.5") }
        if let failOnRegression { _ = try Self.percent(failOnRegression) }
    }

    func run() throws {
        let comparison: RunComparison
        do {
            comparison = try RunComparison(baseline: ResultsFile(path: baseline), candidate: ResultsFile(path: candidate), alpha: alpha)
        } catch {
            throw ValidationError("\(error)")
        }
        guard !comparison.cells.isEmpty else {
            throw ValidationError(
                "no ok cell of '\(candidate)' matches one of '\(baseline)' (same mechanism, variant, wait, mode, size, placement, produce, touch)")
        }
        switch format {
        case .table:
            print(TextTable.render(Self.table(comparison)))
            print("\n\(comparison.summary)")
            if let warning = comparison.conditionsWarning { print("Note: \(warning).") }
        case .csv:
            print(Self.csv(comparison), terminator: "")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(comparison.cells), as: UTF8.self))
        }
        guard let failOnRegression else { return }
        let limit = try Self.percent(failOnRegression)
        let regressions = comparison.regressions(beyond: limit)
        guard !regressions.isEmpty else { return }
        var message = "ipcbench compare: \(regressions.count) cell(s) significantly slower by more than \(failOnRegression):\n"
        for cell in regressions {
            let interval = String(format: "%.3f–%.3f", cell.ratioLow ?? 0, cell.ratioHigh ?? 0)
            message += "  \(Self.name(cell)): \(String(format: "%+.1f%%", cell.slowdownPercent)) (B/A \(String(format: "%.3f", cell.ratio)), interval \(interval), p = \(Self.p(cell.pValue)))\n"
        }
        FileHandle.standardError.write(Data(message.utf8))
        throw ExitCode(1)
    }

    static func name(_ cell: RunComparison.CellChange) -> String {
        "\(cell.mechanism) \(cell.variant) \(cell.wait) \(cell.mode) \(ByteSize.format(cell.messageBytes)) \(cell.placement)"
    }

    static func p(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "" }

    static func table(_ comparison: RunComparison) -> [[String]] {
        var rows = [["mechanism", "variant", "wait", "mode", "size", "placement", "metric", "A", "B", "B/A", "interval", "p", "reps", "verdict"]]
        for cell in comparison.cells {
            let throughput = cell.metric == "bytes_per_s"
            let figure: (Double) -> String = throughput ? { String(format: "%.3f", $0 / 1e9) } : { ConsoleTable.duration($0) }
            let interval = cell.ratioLow.flatMap { low in cell.ratioHigh.map { String(format: "%.3f–%.3f", low, $0) } } ?? ""
            let verdict = switch cell.verdict {
            case .unchanged: "~"
            case .faster, .slower: "\(cell.verdict.rawValue) \(String(format: "%+.1f%%", cell.slowdownPercent))"
            default: cell.verdict.rawValue
            }
            rows.append([
                cell.mechanism, cell.variant, cell.wait, cell.mode, ByteSize.format(cell.messageBytes), cell.placement,
                throughput ? "GB/s" : "p50 RTT/2", figure(cell.baseline), figure(cell.candidate), String(format: "%.3f", cell.ratio), interval,
                p(cell.pValue), "\(cell.baselineRepetitions)/\(cell.candidateRepetitions)", verdict,
            ])
        }
        return rows
    }

    static let csvColumns = [
        "mechanism", "variant", "wait", "mode", "message_bytes", "placement", "metric", "baseline", "candidate", "ratio", "ratio_low", "ratio_high",
        "p_value", "baseline_repetitions", "candidate_repetitions", "verdict", "slowdown_percent",
    ]

    static func csv(_ comparison: RunComparison) -> String {
        func number(_ value: Double?) -> String { value.map { String(format: "%.6g", $0) } ?? "" }
        var text = csvColumns.joined(separator: ",") + "\n"
        for cell in comparison.cells {
            // Text from the files is made safe for spreadsheets; numbers are written as they are.
            let names = [cell.mechanism, cell.variant, cell.wait, cell.mode].map(DisplayText.csvCell)
            let fields = names + [
                String(cell.messageBytes), DisplayText.csvCell(cell.placement), cell.metric,
                number(cell.baseline), number(cell.candidate), number(cell.ratio), number(cell.ratioLow), number(cell.ratioHigh), number(cell.pValue),
                String(cell.baselineRepetitions), String(cell.candidateRepetitions), cell.verdict.rawValue, number(cell.slowdownPercent),
            ]
            text += fields.map(CSVReport.quoted).joined(separator: ",") + "\n"
        }
        return text
    }

    /// A percentage: "10%" or "10" is 10.
    static func percent(_ text: String) throws -> Double {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(number), value >= 0, value.isFinite else {
            throw ValidationError("--fail-on-regression '\(text)' is not a percentage; give e.g. 10%")
        }
        return value
    }
}
