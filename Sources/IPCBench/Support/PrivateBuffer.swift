extension UnsafeMutableRawBufferPointer {
    /// A worker's private message buffer: cache-line aligned, with every page touched now so that
    /// first-touch faults stay out of the timed loop. Its owner frees it with `deallocate()`.
    static func prefaulted(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = allocate(byteCount: byteCount, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        return buffer
    }
}
