import CIPCShim
import Glibc

/// `mmap-file`: the ring in a regular file in the cell's private directory (mode 0600), which each
/// worker opens by path and maps MAP_SHARED. The file goes with the directory when the cell ends.
///
/// The file lives on whatever file system holds TMPDIR (default /tmp). On a disk-backed one the ring's
/// pages are page cache that the kernel writes back now and then (dirty_expire_centisecs); writeback
/// write-protects them, so the next store to a slot takes a fault. That is part of what this
/// mechanism costs compared with shm-posix / shm-sysv (tmpfs / shmem).
public struct MappedFileSegment: SegmentBackend {
    public let id = "mmap-file"
    public let summary = "ring of slots in a regular file in the cell's private directory, mmap'ed MAP_SHARED by each worker"
    public let defaultVariants = ["in-place/semaphore"]

    static let fileName = "ring.shm"

    public init() {}

    public func unavailableReason() -> String? { nil }

    /// The file must fit in the free space of the file system holding the cell directories (its
    /// pages are page cache, which the kernel can write back and evict, so memory does not bound it).
    public func sizeBounds() -> [(bytes: Int, source: String)] {
        let directory = Self.workspaceBase
        return SharedRing.availableBytes(onFileSystemOf: directory).map { [($0, "free space in \(directory) \($0) bytes")] } ?? []
    }

    /// Where Workspace creates cell directories.
    static var workspaceBase: String {
        getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    public func createSegment(bytes: Int, workspace: String, memoryNode: Int?) throws -> CreatedSegment {
        try SharedRing.checkSpace(bytes, onFileSystemOf: workspace)
        let path = workspace + "/" + Self.fileName
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("open", path) }
        defer { Glibc.close(descriptor) }
        do {
            try SharedRing.sizeAndAllocate(descriptor: descriptor, bytes: bytes, memoryNode: memoryNode, context: path)
        } catch {
            unlink(path)
            throw error
        }
        return CreatedSegment(parameters: ["path": path])
    }

    public func mapSegment(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping {
        let path = try rendezvous.require("path")
        let descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("open", path) }
        defer { Glibc.close(descriptor) }
        return try SharedRing.mapChecked(descriptor: descriptor, bytes: bytes, context: "ring file \(path)", holding: "the ring")
    }

    /// The file (in the cell's private directory, which goes too when the cell ends).
    public func removeSegments(_ rendezvous: Rendezvous) {
        if let path = rendezvous.parameters["path"] { unlink(path) }
    }
}

public typealias MappedFileMechanism = SharedRingMechanism<MappedFileSegment>

extension SharedRingMechanism where Backend == MappedFileSegment {
    public init(maximumSlots: Int = RingLayout.defaultMaximumSlots) {
        self.init(MappedFileSegment(), maximumSlots: maximumSlots)
    }
}
