import CIPCShim
import Glibc

/// `shm-posix`: the ring in a POSIX shared memory object (a tmpfs file under /dev/shm). The parent
/// creates it under a fresh unguessable name (OwnedNames.posixName; O_CREAT | O_EXCL, mode 0600),
/// sizes and allocates it; each worker opens it by name and maps it, as unrelated processes would;
/// the parent unlinks it.
public struct POSIXSharedMemorySegment: SegmentBackend {
    public let id = "shm-posix"
    public let summary = "ring of slots in POSIX shared memory (shm_open + mmap), opened by name by each worker"
    public let defaultVariants = ["copy/semaphore", "in-place/semaphore", "in-place/spin"]

    /// Where glibc keeps POSIX shared memory objects (a tmpfs); its free space bounds the ring.
    public static let directory = "/dev/shm"

    public init() {}

    public func unavailableReason() -> String? {
        access(Self.directory, W_OK) == 0 ? nil : "POSIX shared memory is not available (\(Self.directory) is missing or not writable)"
    }

    /// /dev/shm's free space and available memory.
    public func sizeBounds() -> [(bytes: Int, source: String)] {
        let space = SharedRing.availableBytes(onFileSystemOf: Self.directory).map { [($0, "free space in \(Self.directory) \($0) bytes")] } ?? []
        return space + SharedRing.memoryBound()
    }

    public func createSegment(bytes: Int, workspace: String, memoryNode: Int?) throws -> CreatedSegment {
        try SharedRing.checkSpace(bytes, onFileSystemOf: Self.directory)
        let (name, descriptor) = try Self.createObject()
        defer { Glibc.close(descriptor) }
        do {
            try SharedRing.sizeAndAllocate(descriptor: descriptor, bytes: bytes, memoryNode: memoryNode, context: name)
        } catch {
            shm_unlink(name)
            throw error
        }
        return CreatedSegment(parameters: ["shm-name": name])
    }

    public func mapSegment(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping {
        try Self.mapObject(rendezvous.require("shm-name"), bytes: bytes, holding: "the ring")
    }

    /// Every object the rendezvous names (a pair's one, or a fan-in cell's one per client).
    public func removeSegments(_ rendezvous: Rendezvous) {
        for (key, name) in rendezvous.parameters where key.hasPrefix("shm-name") { shm_unlink(name) }
    }

    /// Creates a new object under a fresh unguessable name (a taken name is someone else's: skipped).
    static func createObject() throws -> (name: String, descriptor: Int32) {
        for _ in 0..<16 {
            let name = OwnedNames.posixName("ring")
            let descriptor = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 { return (name, descriptor) }
            if errno != EEXIST { throw IPCError.lastSystemError("shm_open", name) }
        }
        throw IPCError.setup("shm_open: 16 fresh random names were all taken")
    }

    /// Opens the shared memory object `name` by name and maps its first `bytes`, refusing one too
    /// small for what it should hold.
    static func mapObject(_ name: String, bytes: Int, holding what: String) throws -> SegmentMapping {
        let descriptor = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("shm_open", name) }
        defer { Glibc.close(descriptor) }
        return try SharedRing.mapChecked(descriptor: descriptor, bytes: bytes, context: "shared memory object \(name)", holding: what)
    }
}

public typealias POSIXSharedMemoryMechanism = SharedRingMechanism<POSIXSharedMemorySegment>

extension SharedRingMechanism where Backend == POSIXSharedMemorySegment {
    public init(maximumSlots: Int = RingLayout.defaultMaximumSlots) {
        self.init(POSIXSharedMemorySegment(), maximumSlots: maximumSlots)
    }
}
