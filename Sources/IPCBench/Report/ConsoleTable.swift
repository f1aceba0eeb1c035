import Foundation

/// The summary printed on stdout at the end of a run.
public enum ConsoleTable {
    public static func render(_ outcomes: [CellOutcome]) -> String {
        var rows: [[String]] = [["mechanism", "variant", "wait", "mode", "size", "placement", "copies", "p50 1-way", "p99 1-way", "p50 RTT/2", "msgs/s", "GB/s", "status"]]
        for outcome in outcomes {
            let cell = outcome.cell
            rows.append([
                cell.mechanism.id, cell.variant, cell.wait.rawValue, cell.mode.rawValue, ByteSize.format(cell.messageBytes),
                cell.placement.name + (cell.pairs > 1 ? " ×\(cell.pairs)" : cell.clients > 1 ? " \(cell.clients)→1" : cell.readers > 1 ? " 1→\(cell.readers)" : ""), String(cell.copies),
                duration(outcome.oneWay?.p50), duration(outcome.oneWay?.p99), duration(outcome.halfRoundTrip?.p50),
                rate(outcome.messagesPerSecond), outcome.bytesPerSecond.map { String(format: "%.2f", $0 / 1e9) } ?? "",
                DisplayText.printable(outcome.status.text),
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, field in
                let pad = String(repeating: " ", count: widths[index] - field.count)
                // Numbers right-aligned, text left-aligned; the status column is not padded.
                if index == row.count - 1 { return field }
                return index >= 7 && index <= 11 ? pad + field : field + pad
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// 950 ns, 12.3 µs, 1.20 ms.
    public static func duration(_ nanoseconds: Double?) -> String {
        guard let ns = nanoseconds else { return "" }
        if ns < 1_000 { return String(format: "%.0f ns", ns) }
        if ns < 1_000_000 { return String(format: "%.1f µs", ns / 1e3) }
        return String(format: "%.2f ms", ns / 1e6)
    }

    static func rate(_ value: Double?) -> String {
        guard let value else { return "" }
        if value >= 1e6 { return String(format: "%.2fM", value / 1e6) }
        if value >= 1e3 { return String(format: "%.1fk", value / 1e3) }
        return String(format: "%.0f", value)
    }
}
