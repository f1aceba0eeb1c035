import Foundation

/// Reads an ipcbench results CSV back (for `ipcbench compare`): rows keyed by column name.
public struct ResultsFile: Sendable {
    public var path: String
    public var rows: [[String: String]]

    public init(path: String) throws {
        self.path = path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw IPCError.setup("cannot read '\(path)'")
        }
        var records = Self.parse(text)
        guard let header = records.first, header.contains("mechanism"), header.contains("status") else {
            throw IPCError.setup("'\(path)' is not an ipcbench results CSV (no mechanism/status columns in its header)")
        }
        records.removeFirst()
        rows = records.filter { $0 != [""] }.map { Dictionary(zip(header, $0), uniquingKeysWith: { first, _ in first }) }
    }

    /// RFC 4180 records (quoted fields may hold commas, doubled quotes and newlines).
    public static func parse(_ text: String) -> [[String]] {
        let characters = Array(text)
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var index = 0
        while index < characters.count {
            let character = characters[index]
            index += 1
            if quoted {
                if character != "\"" {
                    field.append(character)
                } else if index < characters.count, characters[index] == "\"" {
                    field.append("\"")
                    index += 1
                } else {
                    quoted = false
                }
                continue
            }
            switch character {
            case "\"": quoted = true
            case ",":
                record.append(field)
                field = ""
            case "\n", "\r\n":
                record.append(field)
                records.append(record)
                record = []
                field = ""
            case "\r": break
            default: field.append(character)
            }
        }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        return records
    }
}
