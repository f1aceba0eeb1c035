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

    /// Mean round-trip time in ns of `roundTrips` cache-line ping-pongs between two threads pinned to
    /// `first` and `second` (capped at `maximumSeconds`), or nil when both are one CPU (spinning
    /// there would only measure the scheduler tick) or pinning fails.
    public static func roundTripNanoseconds(between first: Int, and second: Int, roundTrips: UInt64 = 20_000, maximumSeconds: Double = 0.1) -> Double? {
        guard first != second else { return nil }
        let originalCPUs = Affinity.allowedCPUs()
        let line = Line()
        let done = DispatchSemaphore(value: 0)
        let pongPinned = Atomic<Bool>(false)
        let limit = roundTrips
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
        let start = MonotonicClock.now()
        var completed: UInt64 = 0
        var end = start
        for trip in 0..<limit {
            let ping = 2 * trip + 1
            line.value.store(ping, ordering: .releasing)
            while line.value.load(ordering: .acquiring) != ping + 1 {}
            completed += 1
            if trip & 255 == 255 {
                end = MonotonicClock.now()
                if end >= deadline { break }
            }
        }
        end = MonotonicClock.now()
        line.stop.store(true, ordering: .relaxed)
        done.wait()
        // The calling thread goes back to any CPU of its original mask.
        _ = ipcb_set_affinity(originalCPUs.map(Int32.init), Int32(originalCPUs.count))
        guard pinned, pongPinned.load(ordering: .acquiring), completed > 0 else { return nil }
        return Double(end - start) / Double(completed)
    }
}
