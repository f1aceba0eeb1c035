import ArgumentParser
import IPCBench

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the mechanisms: id, copy count, variants, message-size limit on this system, and whether each can run here.")

    func run() throws {
        var rows = [["id", "copies", "variants (latency / throughput)", "max message", "status", "what it is"]]
        for mechanism in MechanismRegistry.all {
            let variants = Mode.allCases.map { mechanism.variant(for: EndpointOptions(mode: $0, messageBytes: 64)) }
            let limit = mechanism.messageLimit().map { "\(ByteSize.format($0.bytes)) (\($0.source))" } ?? "none (stream)"
            let status = mechanism.unavailableReason().map { "unavailable: \($0)" } ?? "available"
            rows.append([mechanism.id, String(mechanism.copies), variants.joined(separator: " / "), limit, status, mechanism.summary])
        }
        print(TextTable.render(rows))
        print("\nMessages are at least \(MessageFormat.minimumMessageBytes) bytes (sequence number + send timestamp).")
    }
}

enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, field in
                index == row.count - 1 ? field : field + String(repeating: " ", count: widths[index] - field.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
