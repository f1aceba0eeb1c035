import Glibc

/// One process's mapping of a ring segment; undone by `unmap` (a worker's when its endpoint closes).
public struct SegmentMapping {
    /// How it was mapped, which says how to undo it.
    public enum Kind: Sendable { case mmap, sysVAttach }
    public let base: UnsafeMutableRawPointer
    public let bytes: Int
    public let kind: Kind

    public init(base: UnsafeMutableRawPointer, bytes: Int, kind: Kind) {
        self.base = base
        self.bytes = bytes
        self.kind = kind
    }

    public func unmap() {
        switch kind {
        case .mmap: munmap(base, bytes)
        case .sysVAttach: shmdt(base)
        }
    }

    /// Maps `bytes` of an open file or shm object, shared and writable.
    public static func map(descriptor: Int32, bytes: Int, context: String) throws -> SegmentMapping {
        guard let base = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), base != MAP_FAILED else {
            throw IPCError.lastSystemError("mmap", context)
        }
        return SegmentMapping(base: base, bytes: bytes, kind: .mmap)
    }
}
