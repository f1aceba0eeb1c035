import CIPCShim
import Glibc

/// A shared-memory ring (see SharedRing.swift) in a System V shared memory segment. The parent
/// creates a segment (a pid-tagged key, IPC_CREAT|IPC_EXCL, mode 0600), initialises it and passes its id to the
/// workers, which attach it (shmat); the parent removes it (IPC_RMID) in teardown, whatever the outcome.
public struct SysVSharedMemoryMechanism: Mechanism {
    public let sharesMemory = true
    public let id = "shm-sysv"
    public let summary = "ring of slots in System V shared memory (shmget with a pid-tagged key, IPC_EXCL, mode 0600 + shmat)"

    static let defaultVariants = ["in-place/semaphore"]
    static let maximumSegmentPath = "/proc/sys/kernel/shmmax"
    static let totalPagesPath = "/proc/sys/kernel/shmall"

    /// Upper bound on slots per ring (tests lower it to stress wrap-around).
    let maximumSlots: Int

    public init(maximumSlots: Int = RingLayout.defaultMaximumSlots) {
        self.maximumSlots = maximumSlots
    }

    public func variants(for mode: Mode) -> [String] { Self.defaultVariants }
    public func optionalVariants(for mode: Mode) -> [String] { SharedRing.variantNames(excluding: Self.defaultVariants) }
    public func copies(for variant: String) -> Int { SharedRing.copies(for: variant) }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { SharedRing.waitStrategies(for: variant) }
    public func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        SharedRing.waitUnavailableReason(wait, variant: variant)
    }

    public func unavailableReason() -> String? {
        SystemFacts.read(Self.maximumSegmentPath) == nil
            ? "System V shared memory is not available (\(Self.maximumSegmentPath) is missing; kernel without CONFIG_SYSVIPC?)"
            : nil
    }

    /// kernel.shmmax (bytes per segment) and kernel.shmall (pages in all segments) bound the segment,
    /// and so does available memory. (Their defaults, near 2^64, do not fit an Int and bound nothing.)
    public func messageLimit() -> MessageLimit? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var bounds = SharedRing.memoryBound()
        if let maximum = SystemFacts.readInt(Self.maximumSegmentPath) {
            bounds.append((maximum, "kernel.shmmax = \(maximum) (\(Self.maximumSegmentPath))"))
        }
        if let pages = SystemFacts.readInt(Self.totalPagesPath), pages < Int.max / page {
            bounds.append((pages * page, "kernel.shmall = \(pages) pages (\(Self.totalPagesPath))"))
        }
        return SharedRing.messageLimit(bounds)
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        let variant = try SharedRingVariant.parse(options.variant, mechanism: id)
        let layout = RingLayout(messageBytes: options.messageBytes, mode: options.mode, maximumSlots: maximumSlots)
        let bytes = SharedRing.objectBytes(layout)
        let segment = try OwnedNames.createSysV(ledger: workspace) { shmget($0, bytes, $1) }
        guard segment >= 0 else { throw IPCError.lastSystemError("shmget") }
        do {
            let mapping = try Self.attach(segment)
            defer { mapping.unmap() }
            if let node = options.memoryNode {
                try MemoryBinding.populate(UnsafeMutableRawBufferPointer(start: mapping.base, count: mapping.bytes), onNode: node)
            }
            try layout.initialize(segment: mapping.base)
            var rendezvous = Rendezvous(parameters: ["shm-id": String(segment)])
            try SharedRing.prepareNotification(variant, layout, &rendezvous, workspace: workspace)
            return rendezvous
        } catch {
            shmctl(segment, IPC_RMID, nil)
            throw error
        }
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        SharedRing.listener(try open(rendezvous, options, role: .consumer))
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        try SharedRing.connected(try open(rendezvous, options, role: .producer))
    }

    public func teardown(_ rendezvous: Rendezvous) {
        if let segment = rendezvous.parameters["shm-id"].flatMap({ Int32($0) }) { shmctl(segment, IPC_RMID, nil) }
        SharedRing.teardownNotification(rendezvous)
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

    private func open(_ rendezvous: Rendezvous, _ options: EndpointOptions, role: Role) throws -> any MessageEndpoint {
        guard let segment = Int32(try rendezvous.require("shm-id")) else { throw IPCError.setup("malformed shm-id") }
        let layout = try RingLayout(rendezvous)
        let mapping = try Self.attach(segment)
        return try SharedRing.endpoint(mapping: mapping, layout: layout, rendezvous: rendezvous, options: options, role: role, mechanism: id)
    }
}
