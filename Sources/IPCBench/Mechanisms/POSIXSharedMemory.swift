import CIPCShim
import Glibc

/// A shared-memory ring (see SharedRing.swift) in a POSIX shared memory object. The parent creates
/// it under a fresh unguessable name (OwnedNames.posixName; O_CREAT | O_EXCL, mode 0600), sizes, allocates and
/// initialises it; each worker opens it by name and maps it, as unrelated processes would; the
/// parent unlinks it in teardown, whatever the outcome.
public struct POSIXSharedMemoryMechanism: Mechanism {
    public let sharesMemory = true
    public let id = "shm-posix"
    public let summary = "ring of slots in POSIX shared memory (shm_open + mmap), opened by name by each worker"

    /// Where glibc keeps POSIX shared memory objects (a tmpfs); its free space bounds the ring.
    public static let directory = "/dev/shm"
    static let defaultVariants = ["copy/semaphore", "in-place/semaphore", "in-place/spin"]

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
        access(Self.directory, W_OK) == 0 ? nil : "POSIX shared memory is not available (\(Self.directory) is missing or not writable)"
    }

    /// The segment (a throughput ring of at least 8 slots) must fit in /dev/shm's free space
    /// and in available memory.
    public func messageLimit() -> MessageLimit? {
        let space = SharedRing.availableBytes(onFileSystemOf: Self.directory).map { [($0, "free space in \(Self.directory) \($0) bytes")] } ?? []
        return SharedRing.messageLimit(space + SharedRing.memoryBound())
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        let variant = try SharedRingVariant.parse(options.variant, mechanism: id)
        let layout = RingLayout(messageBytes: options.messageBytes, mode: options.mode, maximumSlots: maximumSlots)
        let bytes = SharedRing.objectBytes(layout)
        try SharedRing.checkSpace(bytes, onFileSystemOf: Self.directory)
        let (name, descriptor) = try Self.createObject()
        defer { Glibc.close(descriptor) }
        do {
            return try SharedRing.prepareSegment(
                descriptor: descriptor, bytes: bytes, layout: layout, variant: variant, context: name, parameters: ["shm-name": name],
                workspace: workspace, memoryNode: options.memoryNode)
        } catch {
            shm_unlink(name)
            throw error
        }
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        SharedRing.listener(try open(rendezvous, options, role: .consumer))
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        try SharedRing.connected(try open(rendezvous, options, role: .producer))
    }

    /// Every object the rendezvous names (a pair's one, or a fan-in cell's one per client).
    public func teardown(_ rendezvous: Rendezvous) {
        for (key, name) in rendezvous.parameters where key.hasPrefix("shm-name") { shm_unlink(name) }
        SharedRing.teardownNotification(rendezvous)
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

    private func open(_ rendezvous: Rendezvous, _ options: EndpointOptions, role: Role) throws -> any MessageEndpoint {
        let layout = try RingLayout(rendezvous)
        let mapping = try Self.mapObject(rendezvous.require("shm-name"), bytes: layout.segmentBytes, holding: "the ring")
        return try SharedRing.endpoint(mapping: mapping, layout: layout, rendezvous: rendezvous, options: options, role: role, mechanism: id)
    }

    /// Opens the shared memory object `name` by name and maps its first `bytes`, refusing one too
    /// small for what it should hold.
    static func mapObject(_ name: String, bytes: Int, holding what: String) throws -> SegmentMapping {
        let descriptor = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("shm_open", name) }
        defer { Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw IPCError.lastSystemError("fstat", name) }
        guard Int(info.st_size) >= bytes else {
            throw IPCError.setup("shared memory object \(name) holds \(info.st_size) bytes, \(what) needs \(bytes)")
        }
        return try SegmentMapping.map(descriptor: descriptor, bytes: bytes, context: name)
    }
}
