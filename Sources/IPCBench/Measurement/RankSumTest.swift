/// The Mann-Whitney U (Wilcoxon rank-sum) test between two small samples — here, one figure per
/// repetition of a cell in each of two runs — and the distribution-free interval of their ratio
/// that goes with it. Chosen over a t-test because repetitions on a shared machine are not normal
/// (a preempted repetition is an outlier, not a wider bell) and over a bootstrap because with five
/// repetitions a side a bootstrap has too few distinct resamples to be trusted; benchstat makes the
/// same choice. The test uses only the order of the figures, so it is exact for any distribution.
public enum RankSumTest {
    /// U of `a`: the number of pairs (a_i, b_j) with a_i > b_j, ties counting one half.
    public static func u(_ a: [Double], _ b: [Double]) -> Double {
        var u = 0.0
        for x in a {
            for y in b {
                if x > y { u += 1 } else if x == y { u += 0.5 }
            }
        }
        return u
    }

    /// How many of the C(m+n, m) orderings of two untied samples of sizes m and n give each U in
    /// 0...m·n. (Recurrence on the largest value: it belongs to the first sample, adding n to U, or
    /// to the second.)
    static func orderingsByU(_ m: Int, _ n: Int) -> [Double] {
        guard m > 0, n > 0 else { return [1] }
        // counts[j][u] for the current i, j = 0...n.
        var counts = (0...n).map { _ in [1.0] + Array(repeating: 0.0, count: m * n) }
        for i in 1...m {
            var next = (0...n).map { _ in Array(repeating: 0.0, count: m * n + 1) }
            next[0][0] = 1
            for j in 1...n {
                for u in 0...(i * j) {
                    let largestInFirst = u >= j ? counts[j][u - j] : 0
                    next[j][u] = largestInFirst + next[j - 1][u]
                }
            }
            counts = next
        }
        return counts[n]
    }

    /// Two-sided exact p-value: twice the smaller tail of U's distribution, at most 1. With ties,
    /// U may be a half: each tail is then taken from the nearest whole U beyond it (conservative).
    public static func pValue(_ a: [Double], _ b: [Double]) -> Double {
        let m = a.count, n = b.count
        guard m > 0, n > 0 else { return 1 }
        let observed = u(a, b)
        let counts = orderingsByU(m, n)
        let total = counts.reduce(0, +)
        let low = counts[0...Int(observed.rounded(.down))].reduce(0, +) / total
        let high = counts[Int(observed.rounded(.up))...].reduce(0, +) / total
        return min(1, 2 * min(low, high))
    }

    /// The smallest two-sided p-value samples of these sizes can give (2 / C(m+n, m)): when it is not
    /// below the significance level, no difference can be shown, however large.
    public static func smallestPValue(_ m: Int, _ n: Int) -> Double {
        guard m > 0, n > 0 else { return 1 }
        let counts = orderingsByU(m, n)
        return min(1, 2 * counts[0] / counts.reduce(0, +))
    }

    /// The ratio of `b` to `a` as the median of all m·n ratios b_j / a_i (the Hodges-Lehmann estimate
    /// on a log scale), with the interval between the k-th smallest and k-th largest of them, k chosen
    /// from U's distribution so that it covers at least 1 - `alpha` (nil when the sizes allow none).
    /// It excludes 1 when the test rejects at `alpha` (up to ties).
    public static func ratio(_ a: [Double], _ b: [Double], alpha: Double) -> (estimate: Double, interval: ClosedRange<Double>?)? {
        guard !a.isEmpty, !b.isEmpty, a.allSatisfy({ $0 > 0 }) else { return nil }
        let ratios = a.flatMap { x in b.map { $0 / x } }.sorted()
        let middle = ratios.count / 2
        let estimate = ratios.count % 2 == 1 ? ratios[middle] : (ratios[middle - 1] * ratios[middle]).squareRoot()
        let counts = orderingsByU(a.count, b.count)
        let total = counts.reduce(0, +)
        // k: the largest with P(U <= k - 1) <= alpha / 2.
        var k = 0, tail = 0.0
        while k < counts.count, tail + counts[k] / total <= alpha / 2 {
            tail += counts[k] / total
            k += 1
        }
        guard k > 0 else { return (estimate, nil) }
        return (estimate, ratios[k - 1]...ratios[ratios.count - k])
    }
}
