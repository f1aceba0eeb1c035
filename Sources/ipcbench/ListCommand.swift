import ArgumentParser
import IPCBench

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the mechanisms: id, copy count, variants, wait strategies, message-size limit on this system, and whether each can run here.")

    func run() throws {
        var rows = [["id", "variant (copies)", "modes", "--wait", "max message", "status", "what it is"]]
        for mechanism in MechanismRegistry.all {
            var modesByVariant: [(variant: String, modes: [String])] = []
            for mode in Mode.allCases {
                for variant in mechanism.variants(for: mode) + mechanism.optionalVariants(for: mode) {
                    if let index = modesByVariant.firstIndex(where: { $0.variant == variant }) {
                        modesByVariant[index].modes.append(mode.rawValue)
                    } else {
                        modesByVariant.append((variant, [mode.rawValue]))
                    }
                }
            }
            let limit = mechanism.messageLimit().map { limit in
                let exact = limit.bytes % 1024 == 0 ? ByteSize.format(limit.bytes) : "\(limit.bytes) B"
                return "\(exact) (\(limit.source))"
            } ?? "none"
            let status = mechanism.unavailableReason().map { "unavailable: \($0)" } ?? "available"
            for (index, entry) in modesByVariant.enumerated() {
                let first = index == 0
                rows.append([
                    first ? mechanism.id : "", "\(entry.variant) (\(mechanism.copies(for: entry.variant)))",
                    entry.modes.joined(separator: ","), Self.waits(mechanism, entry.variant), first ? limit : "", first ? status : "", first ? mechanism.summary : "",
                ])
            }
        }
        print(TextTable.render(rows))
        print("\nMessages are at least \(MessageFormat.minimumMessageBytes) bytes (sequence number + send timestamp).")
        print("\nMany-to-one shapes (--clients; the others give `unavailable:` rows):")
        print(TextTable.render(MechanismRegistry.all.compactMap { $0 as? any FanInMechanism }.map { ["  " + $0.id, $0.fanInShape] }))
        print("\nOne-to-many shapes (--readers, streaming):")
        print(TextTable.render(MechanismRegistry.all.compactMap { $0 as? any FanOutMechanism }.map { ["  " + $0.id, $0.fanOutShape] }))
        print("\nWait strategies (--wait; a mechanism that lacks one gives `unavailable:` rows saying so):")
        print(TextTable.render(WaitStrategy.allCases.map { ["  " + $0.rawValue, $0.summary] }))
    }

    /// The strategies a variant supports, `all` when it supports every one.
    static func waits(_ mechanism: any Mechanism, _ variant: String) -> String {
        let supported = mechanism.waitStrategies(for: variant)
        return supported == WaitStrategy.allCases ? "all" : supported.map(\.rawValue).joined(separator: ",")
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
