import Glibc

/// A point in time to give up at, with its length for error messages.
struct Deadline {
    let nanoseconds: UInt64
    let seconds: Double

    init(seconds: Double, from start: UInt64 = MonotonicClock.now()) {
        self.seconds = seconds
        nanoseconds = start + UInt64(seconds * 1e9)
    }

    var hasPassed: Bool { MonotonicClock.now() >= nanoseconds }
}
