import CIPCShim
import Glibc

/// `shm-sysv`: the ring in a System V shared memory segment. The parent creates it (a pid-tagged
/// key, IPC_CREAT | IPC_EXCL, mode 0600) and passes its id to the workers, which attach it (shmat);
/// the parent removes it (IPC_RMID).
public struct SysVSharedMemorySegment: SegmentBackend {
    public let id = "shm-sysv"
    public let summary = "ring of slots in System V shared memory (shmget with a pid-tagged key, IPC_EXCL, mode 0600 + shmat)"
    public let defaultVariants = ["in-place/semaphore"]

    static let maximumSegmentPath = "/proc/sys/kernel/shmmax"
    static let totalPagesPath = "/proc/sys/kernel/shmall"

    public init() {}

    public func unavailableReason() -> String? {
        SystemFacts.read(Self.maximumSegmentPath) == nil
            ? "System V shared memory is not available (\(Self.maximumSegmentPath) is missing; kernel without CONFIG_SYSVIPC?)"
            : nil
    }

    /// kernel.shmmax (bytes per segment) and kernel.shmall (pages in all segments), and available
    /// memory. (The sysctls' defaults, near 2^64, do not fit an Int and bound nothing.)
    public func sizeBounds() -> [(bytes: Int, source: String)] { Self.systemVBounds() + SharedRing.memoryBound() }

    static func systemVBounds() -> [(bytes: Int, source: String)] {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var bounds: [(bytes: Int, source: String)] = []
        if let maximum = SystemFacts.readInt(maximumSegmentPath) {
            bounds.append((maximum, "kernel.shmmax = \(maximum) (\(maximumSegmentPath))"))
        }
        if let pages = SystemFacts.readInt(totalPagesPath), pages < Int.max / page {
            bounds.append((pages * page, "kernel.shmall = \(pages) pages (\(totalPagesPath))"))
        }
        return bounds
    }

    public func createSegment(bytes: Int, workspace: String, memoryNode: Int?) throws -> CreatedSegment {
        try Self.create(bytes: bytes, flags: 0, workspace: workspace, memoryNode: memoryNode)
    }

    /// A fresh segment made with shmget `flags` (SHM_HUGETLB for huge pages), with its pages on
    /// `memoryNode` when one is given.
    static func create(bytes: Int, flags: Int32, workspace: String, memoryNode: Int?) throws -> CreatedSegment {
        let segment = try OwnedNames.createSysV(ledger: workspace) { shmget($0, bytes, $1 | flags) }
        guard segment >= 0 else { throw IPCError.lastSystemError("shmget") }
        do {
            // Without a node the pages come when the workers prefault their mappings (first touch).
            if let memoryNode {
                let mapping = try attach(segment)
                defer { mapping.unmap() }
                try MemoryBinding.populate(UnsafeMutableRawBufferPointer(start: mapping.base, count: mapping.bytes), onNode: memoryNode)
            }
        } catch {
            shmctl(segment, IPC_RMID, nil)
            throw error
        }
        return CreatedSegment(parameters: ["shm-id": String(segment)])
    }

    public func mapSegment(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping {
        try Self.map(rendezvous, bytes: bytes)
    }

    static func map(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping {
        guard let segment = Int32(try rendezvous.require("shm-id")) else { throw IPCError.setup("malformed shm-id") }
        let mapping = try attach(segment)
        guard mapping.bytes >= bytes else {
            mapping.unmap()
            throw IPCError.setup("System V segment \(segment) holds \(mapping.bytes) bytes, the ring needs \(bytes)")
        }
        return mapping
    }

    public func removeSegments(_ rendezvous: Rendezvous) {
        if let segment = rendezvous.parameters["shm-id"].flatMap({ Int32($0) }) { shmctl(segment, IPC_RMID, nil) }
    }

    private static func attach(_ segment: Int32) throws -> SegmentMapping {
        guard let base = shmat(segment, nil, 0), base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw IPCError.lastSystemError("shmat", "segment \(segment)")
        }
        var info = shmid_ds()
        guard shmctl(segment, IPC_STAT, &info) == 0 else {
            let failure = IPCError.lastSystemError("shmctl(IPC_STAT)", "segment \(segment)")
            shmdt(base)
            throw failure
        }
        return SegmentMapping(base: base, bytes: Int(info.shm_segsz), kind: .sysVAttach)
    }
}

public typealias SysVSharedMemoryMechanism = SharedRingMechanism<SysVSharedMemorySegment>

extension SharedRingMechanism where Backend == SysVSharedMemorySegment {
    public init(maximumSlots: Int = RingLayout.defaultMaximumSlots) {
        self.init(SysVSharedMemorySegment(), maximumSlots: maximumSlots)
    }
}
