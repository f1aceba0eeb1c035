import Glibc

/// One worker's mapping of the segment; undone by `unmap` when the endpoint closes.
struct SegmentMapping {
    enum Kind { case mmap, sysVAttach }
    let base: UnsafeMutableRawPointer
    let bytes: Int
    let kind: Kind

    func unmap() {
        switch kind {
        case .mmap: munmap(base, bytes)
        case .sysVAttach: shmdt(base)
        }
    }

    /// Maps `bytes` of an open file or shm object, shared and writable.
    static func map(descriptor: Int32, bytes: Int, context: String) throws -> SegmentMapping {
        guard let base = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), base != MAP_FAILED else {
            throw IPCError.lastSystemError("mmap", context)
        }
        return SegmentMapping(base: base, bytes: bytes, kind: .mmap)
    }
}
