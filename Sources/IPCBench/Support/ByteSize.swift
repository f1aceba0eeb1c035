/// Message sizes as users write them: `64`, `4K`, `1M` (binary multiples: K = 1024).
public enum ByteSize {
    public static let allowedForm = "a positive whole number of bytes, optionally with K, M or G (×1024), e.g. 64, 4K, 1M"

    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace()
        guard let last = trimmed.last else { return nil }
        var digits = Substring(trimmed)
        var multiplier = 1
        switch last {
        case "k", "K": multiplier = 1 << 10
        case "m", "M": multiplier = 1 << 20
        case "g", "G": multiplier = 1 << 30
        default: break
        }
        if multiplier != 1 { digits = digits.dropLast() }
        if digits.hasSuffix("i") || digits.hasSuffix("I") { return nil }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
              let value = Int(digits)
        else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    /// Short human form: 64 B, 4 KiB, 1 MiB, 1.5 KiB.
    public static func format(_ bytes: Int) -> String {
        let units = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, unit) in units where bytes >= size {
            let value = Double(bytes) / Double(size)
            return value == value.rounded() ? "\(Int(value)) \(unit)" : String(format: "%.1f \(unit)", value)
        }
        return "\(bytes) B"
    }
}
