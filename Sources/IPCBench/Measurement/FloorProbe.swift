import CIPCShim
import Foundation
import Glibc
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

    /// Seconds the peer thread may take to start running before the probe gives up.
    static let startSeconds = 1.0

    /// Round trips bounced before timing, so both CPUs are running and the line is hot.
    static let warmupRoundTrips: UInt64 = 2_000
    /// Round trips per timed batch; the probe reports the median of the batches' means.
    static let batchRoundTrips: UInt64 = 1_000

    /// Round-trip time in ns of a cache line bounced between two threads pinned to `first` and
    /// `second`: the median of the mean round trip of `roundTrips / batchRoundTrips` batches, after a
    /// warm-up (capped at `maximumSeconds` in all), or nil when both are one CPU (spinning there would
    /// only measure the scheduler tick), pinning fails, the second thread cannot be created (no thread
    /// to spare: RLIMIT_NPROC, a cgroup's pids.max) or is not running within `startSeconds`, or the
    /// run is interrupted meanwhile.
    ///
    /// The median of batches rather than one mean over all of them: a host that takes a vCPU away for
    /// milliseconds would double a mean, while the cell's p50 shrugs such pauses off; its yardstick
    /// must too (results/DECISIONS.md).
    public static func roundTripNanoseconds(between first: Int, and second: Int, roundTrips: UInt64 = 20_000, maximumSeconds: Double = 0.1) -> Double? {
        guard first != second else { return nil }
        let originalCPUs = Affinity.allowedCPUs()
        let line = Line()
        let pongPinned = Atomic<Bool>(false)
        // With no thread to spare (RLIMIT_NPROC, a cgroup's pids.max) there is no floor to measure.
        guard let pong = PeerThread(body: {
            // Given up on before it started (see below): nothing to answer.
            if line.stop.load(ordering: .acquiring) { return }
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
        }) else { return nil }
        let pinned = ipcb_pin_to_cpu(Int32(first)) == 0
        // A thread that was created but is not running within `startSeconds` (the host starves us),
        // or an interruption meanwhile, ends the probe with no floor instead of spinning forever.
        let startDeadline = MonotonicClock.now() + UInt64(startSeconds * 1e9)
        while !line.go.load(ordering: .acquiring) {
            if Interruption.requested || MonotonicClock.now() >= startDeadline {
                // The thread sees `stop` whenever it does start (or if it started just now), and ends
                // at once; nobody waits for it.
                line.stop.store(true, ordering: .releasing)
                pong.detach()
                _ = ipcb_set_affinity(originalCPUs.map(Int32.init), Int32(originalCPUs.count))
                return nil
            }
        }
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
        pong.join()
        // The calling thread goes back to any CPU of its original mask.
        _ = ipcb_set_affinity(originalCPUs.map(Int32.init), Int32(originalCPUs.count))
        guard pinned, pongPinned.load(ordering: .acquiring), !batchMeans.isEmpty else { return nil }
        return Statistics.median(batchMeans)
    }
}

/// A joinable pthread running `body`: created with pthread_create so a failure to create it (EAGAIN
/// when the user or cgroup has no thread to spare) is seen at once, where Foundation's `Thread.start()`
/// reports nothing and the thread simply never runs.
final class PeerThread {
    private final class Body: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private var thread = pthread_t()
    private var attached = true

    /// Starts the thread, or returns nil when it cannot be created.
    init?(body: @escaping () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            return nil
        }
    }

    /// Waits for the thread to end.
    func join() {
        guard attached else { return }
        pthread_join(thread, nil)
        attached = false
    }

    /// Lets the thread end on its own; its resources go when it does.
    func detach() {
        guard attached else { return }
        pthread_detach(thread)
        attached = false
    }

    deinit { detach() }
}
