/// Text that came from elsewhere (a `serve` host, a worker's error) made safe to show: control and
/// format characters (terminal escapes, carriage returns, bidirectional overrides) are written as
/// `\u{…}` so they cannot drive a terminal or hide text, and a CSV cell cannot start a spreadsheet
/// formula.
public enum DisplayText {
    /// `text` with every control (Cc) and format (Cf) character spelled out as `\u{HEX}`.
    public static func printable(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format:
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `printable(text)`, and prefixed with `'` when a spreadsheet would read it as a formula
    /// (a leading `=`, `+`, `-` or `@`). For free-text CSV fields, not numbers.
    public static func csvCell(_ text: String) -> String {
        let safe = printable(text)
        guard let first = safe.first, "=+-@".contains(first) else { return safe }
        return "'" + safe
    }
}
