/// Spread of one figure across repetitions.
public enum Statistics {
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    public static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// Two-sided 95% quantiles of Student's t for 1…30 degrees of freedom (beyond: the normal 1.96).
    static let studentT95: [Double] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ]

    /// The 95% confidence interval of the mean (Student's t), nil with fewer than two values.
    public static func confidenceInterval95(_ values: [Double]) -> ClosedRange<Double>? {
        guard values.count >= 2, let mean = mean(values) else { return nil }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        let degrees = values.count - 1
        let t = degrees <= studentT95.count ? studentT95[degrees - 1] : 1.96
        let halfWidth = t * (variance / Double(values.count)).squareRoot()
        return (mean - halfWidth)...(mean + halfWidth)
    }

    /// Half the interval's width relative to its centre (0.05 = ±5%).
    public static func relativeHalfWidth(_ interval: ClosedRange<Double>) -> Double? {
        let centre = (interval.lowerBound + interval.upperBound) / 2
        return centre != 0 ? (interval.upperBound - interval.lowerBound) / 2 / abs(centre) : nil
    }

    /// Sample standard deviation divided by the mean; nil with fewer than two values.
    public static func coefficientOfVariation(_ values: [Double]) -> Double? {
        guard values.count >= 2, let mean = mean(values), mean != 0 else { return nil }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return variance.squareRoot() / mean
    }

    /// (max − min) / mean in percent: how far apart simultaneous pairs' figures are; nil for fewer
    /// than two values.
    public static func spreadPercent(_ values: [Double]) -> Double? {
        guard values.count >= 2, let mean = mean(values), mean != 0, let low = values.min(), let high = values.max() else { return nil }
        return (high - low) / mean * 100
    }
}
