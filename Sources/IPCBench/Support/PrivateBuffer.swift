/// A worker's private message buffer: cache-line aligned, with every page touched at creation so
/// that first-touch faults stay out of the timed loop. Non-copyable: its one owner frees it when it
/// goes, so no endpoint frees buffers by hand (or twice). It holds a pointer only, so using it from
/// a timed loop costs no reference counting.
struct PrivateBuffer: ~Copyable {
    let bytes: UnsafeMutableRawBufferPointer

    init(byteCount: Int, alignment: Int = 64) {
        bytes = .allocate(byteCount: byteCount, alignment: alignment)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { bytes.deallocate() }

    /// Its first `count` bytes (a message of that size).
    @inline(__always)
    func prefix(_ count: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[0..<count])
    }
}

extension UnsafeMutableRawBufferPointer {
    /// A private buffer whose owner cannot hold a non-copyable value (a copyable struct such as
    /// RingChannel): the same allocation as PrivateBuffer; the owner frees it with `deallocate()`.
    static func prefaulted(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = allocate(byteCount: byteCount, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        return buffer
    }
}
