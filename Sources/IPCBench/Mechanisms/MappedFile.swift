import CIPCShim
import Glibc

/// A shared-memory ring (see SharedRing.swift) in a regular file in the cell's private directory
/// (mode 0600), which each worker opens by path and maps MAP_SHARED. The file goes with the
/// directory when the cell ends.
///
/// The file lives on whatever file system holds TMPDIR (default /tmp). On a disk-backed one the ring's
/// pages are page cache that the kernel writes back now and then (dirty_expire_centisecs); writeback
/// write-protects them, so the next store to a slot takes a fault. That is part of what this
/// mechanism costs compared with shm-posix / shm-sysv (tmpfs / shmem).
public struct MappedFileMechanism: Mechanism {
    public let sharesMemory = true
    public let id = "mmap-file"
    public let summary = "ring of slots in a regular file in the cell's private directory, mmap'ed MAP_SHARED by each worker"

    static let defaultVariants = ["in-place/semaphore"]
    static let fileName = "ring.shm"

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

    /// The file must fit in the free space of the file system holding the cell directories (its
    /// pages are page cache, which the kernel can write back and evict, so memory does not bound it).
    public func messageLimit() -> MessageLimit? {
        let directory = Self.workspaceBase
        return SharedRing.messageLimit(SharedRing.availableBytes(onFileSystemOf: directory).map { [($0, "free space in \(directory) \($0) bytes")] } ?? [])
    }

    /// Where Workspace creates cell directories.
    static var workspaceBase: String {
        getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        let variant = try SharedRingVariant.parse(options.variant, mechanism: id)
        let layout = RingLayout(messageBytes: options.messageBytes, mode: options.mode, maximumSlots: maximumSlots)
        let bytes = SharedRing.objectBytes(layout)
        try SharedRing.checkSpace(bytes, onFileSystemOf: workspace)
        let path = workspace + "/" + Self.fileName
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("open", path) }
        defer { Glibc.close(descriptor) }
        do {
            return try SharedRing.prepareSegment(
                descriptor: descriptor, bytes: bytes, layout: layout, variant: variant, context: path, parameters: ["path": path],
                workspace: workspace, memoryNode: options.memoryNode)
        } catch {
            unlink(path)
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
        SharedRing.teardownNotification(rendezvous)
    }

    private func open(_ rendezvous: Rendezvous, _ options: EndpointOptions, role: Role) throws -> any MessageEndpoint {
        let path = try rendezvous.require("path")
        let layout = try RingLayout(rendezvous)
        let descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("open", path) }
        defer { Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw IPCError.lastSystemError("fstat", path) }
        guard Int(info.st_size) >= layout.segmentBytes else {
            throw IPCError.setup("ring file \(path) holds \(info.st_size) bytes, the ring needs \(layout.segmentBytes)")
        }
        let mapping = try SegmentMapping.map(descriptor: descriptor, bytes: layout.segmentBytes, context: path)
        return try SharedRing.endpoint(mapping: mapping, layout: layout, rendezvous: rendezvous, options: options, role: role, mechanism: id)
    }
}
