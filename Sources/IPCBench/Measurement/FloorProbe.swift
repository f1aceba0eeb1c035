import CIPCShim
import Foundation
import Synchronization

/// The floor for any shared-memory hand-off between two CPUs: a cache line bounced between two
/// spinning threads. On VMs the host's placement of the vCPUs moves this floor by several times for
/// seconds at a time, so shared-memory cells record it right before and after they run; without it a
/// placement change would read as a regression.
public enum FloorProbe {
    private final class Line: @unchecked Sendable {
        let value = Atomic<UInt64>(0)
        let go = Atomic<Bool>(false)
        let stop = Atomic<Bool>(false)
    }

    /// Round trips bounced before timing, so both CPUs are running and the line is hot.
    static let warmupRoundTrips: UInt64 = 2_000
    /// Round trips per timed batch; the probe reports the median of the batches' means.
    static let batchRoundTrips: UInt64 = 1_000

    /// Round-trip time in ns of a cache line bounced between two threads pinned to `first` and
    /// `second`: the median of the mean round trip of `roundTrips / batchRoundTrips` batches, after a
    /// warm-up (capped at `maximumSeconds` in all), or nil when both are one CPU (spinning there would
    /// only measure the scheduler tick) or pinning fails.
    ///
    /// The median of batches rather than one mean over all of them: here the host now and then takes
    /// a vCPU away for milliseconds, and one such pause in a 4 ms probe doubled its mean (a probe as
    /// the first thing in a fresh process read 400–2000 ns half the time, against 130–230 ns when
    /// repeated a second later). The cell's p50 shrugs such pauses off; its yardstick must too.
    public static func roundTripNanoseconds(between first: Int, and second: Int, roundTrips: UInt64 = 20_000, maximumSeconds: Double = 0.1) -> Double? {
        guard first != second else { return nil }
        let originalCPUs = Affinity.allowedCPUs()
        let line = Line()
        let done = DispatchSemaphore(value: 0)
        let pongPinned = Atomic<Bool>(false)
        let thread = Thread {
            pongPinned.store(ipcb_pin_to_cpu(Int32(second)) == 0, ordering: .releasing)
            line.go.store(true, ordering: .releasing)
            var expected: UInt64 = 1
            // Answer every odd value with the next even one, until the pinger is done.
            while !line.stop.load(ordering: .relaxed) {
                if line.value.load(ordering: .acquiring) == expected {
                    line.value.store(expected + 1, ordering: .releasing)
                    expected += 2
                }
            }
            done.signal()
        }
        thread.start()
        let pinned = ipcb_pin_to_cpu(Int32(first)) == 0
        while !line.go.load(ordering: .acquiring) {}
        let deadline = MonotonicClock.now() + UInt64(maximumSeconds * 1e9)
        var nextPing: UInt64 = 1
        /// Bounces the line `count` times and returns the time it took, or nil past the deadline.
        func bounce(_ count: UInt64) -> UInt64? {
            let start = MonotonicClock.now()
            for _ in 0..<count {
                line.value.store(nextPing, ordering: .releasing)
                while line.value.load(ordering: .acquiring) != nextPing + 1 {}
                nextPing += 2
            }
            let end = MonotonicClock.now()
            return end < deadline ? end - start : nil
        }
        var batchMeans: [Double] = []
        if bounce(warmupRoundTrips) != nil {
            let batchSize = min(batchRoundTrips, max(roundTrips, 1))
            for _ in 0..<max(1, roundTrips / batchSize) {
                guard let elapsed = bounce(batchSize) else { break }
                batchMeans.append(Double(elapsed) / Double(batchSize))
            }
        }
        line.stop.store(true, ordering: .relaxed)
        done.wait()
        // The calling thread goes back to any CPU of its original mask.
        _ = ipcb_set_affinity(originalCPUs.map(Int32.init), Int32(originalCPUs.count))
        guard pinned, pongPinned.load(ordering: .acquiring), !batchMeans.isEmpty else { return nil }
        return Statistics.median(batchMeans)
    }
}
