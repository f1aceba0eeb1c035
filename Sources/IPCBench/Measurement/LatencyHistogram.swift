import Histogram

/// A latency distribution in nanoseconds, recorded with HdrHistogram (3 significant digits,
/// 1 ns to 100 s), sent between processes as its non-empty buckets.
public struct LatencyHistogram: Sendable {
    public private(set) var histogram: Histogram<UInt64>

    public init() {
        histogram = Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
    }

    /// Records one value; values beyond the trackable range are clamped to it rather than lost.
    @inline(__always)
    public mutating func record(_ nanoseconds: UInt64) {
        if !histogram.record(nanoseconds) {
            _ = histogram.record(histogram.highestTrackableValue)
        }
    }

    /// Records `count` occurrences of one value, clamped like `record(_:)`.
    public mutating func record(_ nanoseconds: UInt64, count: UInt64) {
        if !histogram.record(nanoseconds, count: count) {
            _ = histogram.record(histogram.highestTrackableValue, count: count)
        }
    }

    public mutating func merge(_ other: LatencyHistogram) {
        histogram.add(other.histogram)
    }

    public var count: UInt64 { histogram.totalCount }

    /// Summary statistics, each multiplied by `scale` (0.5 turns round trips into RTT/2).
    public func summary(scale: Double = 1) -> LatencySummary? {
        guard histogram.totalCount > 0 else { return nil }
        func at(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) * scale }
        return LatencySummary(
            min: Double(histogram.min) * scale, p50: at(50), p90: at(90), p99: at(99), p99_9: at(99.9),
            p99_99: at(99.99), max: Double(histogram.max) * scale,
            mean: histogram.mean * scale, stddev: histogram.stdDeviation * scale)
    }

    /// The median alone (used for the spread across repetitions).
    public var median: Double { Double(histogram.valueAtPercentile(50)) }
}

extension LatencyHistogram: Codable {
    /// 2^48 samples: centuries of round trips, and far from overflowing when repetitions are merged.
    static let maximumDecodedCount: UInt64 = 1 << 48

    /// Encoded as [[value, count], …] over recorded buckets: small, exact to the histogram's precision.
    public init(from decoder: Decoder) throws {
        self.init()
        var buckets = try decoder.unkeyedContainer()
        // Results can come from another host (`run --remote`): a total no run could record is refused
        // rather than left to overflow the histogram's counters.
        var total: UInt64 = 0
        while !buckets.isAtEnd {
            let pair = try buckets.decode([UInt64].self)
            guard pair.count == 2 else {
                throw DecodingError.dataCorruptedError(in: buckets, debugDescription: "histogram bucket must be [value, count]")
            }
            total = total.addingReportingOverflow(pair[1]).partialValue
            guard total >= pair[1], total <= Self.maximumDecodedCount else {
                throw DecodingError.dataCorruptedError(in: buckets, debugDescription: "histogram holds more than \(Self.maximumDecodedCount) samples")
            }
            _ = histogram.record(pair[0], count: pair[1])
        }
    }

    public func encode(to encoder: Encoder) throws {
        var buckets = encoder.unkeyedContainer()
        for bucket in histogram.recordedValues() {
            try buckets.encode([bucket.value, bucket.count])
        }
    }
}

public struct LatencySummary: Sendable, Equatable {
    public var min, p50, p90, p99, p99_9, p99_99, max, mean, stddev: Double
}
