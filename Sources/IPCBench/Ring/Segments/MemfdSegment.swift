import CIPCShim
import Glibc

/// `shm-memfd`: the ring in a memfd (memfd_create), anonymous shared memory with no name at all.
/// The parent creates, sizes and allocates it, and each worker inherits its own descriptor of it
/// (SharedRing.handOver): no other process can open it, and nothing is left to remove, whatever
/// happens to the run, once the last descriptor and mapping are gone. Otherwise it is `shm-posix`
/// (both are shmem pages).
public struct MemfdSegment: SegmentBackend {
    public let id = "shm-memfd"
    public let summary = "ring of slots in a memfd (memfd_create + mmap), created by the parent and inherited by each worker: no name to open"
    public let defaultVariants = ["in-place/spin"]

    public init() {}

    public func unavailableReason() -> String? { nil }

    /// Only memory: a memfd is not on any file system with a size of its own.
    public func sizeBounds() -> [(bytes: Int, source: String)] { SharedRing.memoryBound() }

    public func createSegment(bytes: Int, workspace: String, memoryNode: Int?) throws -> CreatedSegment {
        let descriptor = ipcb_memfd_create("ipcbench-ring")
        guard descriptor >= 0 else { throw IPCError.lastSystemError("memfd_create") }
        do {
            try SharedRing.sizeAndAllocate(descriptor: descriptor, bytes: bytes, memoryNode: memoryNode, context: "memfd")
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        return CreatedSegment(descriptor: descriptor)
    }

    public func mapSegment(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping {
        try SharedRing.mapChecked(descriptor: try SharedRing.inheritedSegment(rendezvous), bytes: bytes, context: "the inherited memfd", holding: "the ring")
    }

    /// Nothing has a name: the harness closes the parent's descriptors, and the memory goes with the
    /// last worker's.
    public func removeSegments(_ rendezvous: Rendezvous) {}
}
