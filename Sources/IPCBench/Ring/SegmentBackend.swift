import Glibc

/// Where a shared-memory ring's segment lives: how the parent creates and removes it, and how a
/// worker maps it. Everything else — layout, notification, endpoints — is the ring's own
/// (SharedRingMechanism). A new backend is one file with a type conforming to this and one line in
/// MechanismRegistry: `SharedRingMechanism(MyBackend())`.
public protocol SegmentBackend: Sendable {
    /// The mechanism's id (`ipcbench run --mechanisms`), its one-line summary, and the ring variants
    /// it runs by default (the others are optional).
    var id: String { get }
    var summary: String { get }
    var defaultVariants: [String] { get }
    /// Why this machine cannot hold such a segment (nil: it can), with what to change.
    func unavailableReason() -> String?
    /// What bounds the segment's bytes here, each with where the bound comes from.
    func sizeBounds() -> [(bytes: Int, source: String)]
    /// Parent: creates a fresh segment of `bytes` — exclusively, never one someone else made — with
    /// its memory allocated now (bound to `memoryNode` when given), and returns what names it.
    /// Removes what it made if it fails.
    func createSegment(bytes: Int, workspace: String, memoryNode: Int?) throws -> CreatedSegment
    /// Worker: maps at least `bytes` of the segment `rendezvous` names (or, for a segment without a
    /// name, the one it inherited: `SharedRing.inheritedSegment(rendezvous)`), shared and writable.
    func mapSegment(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping
    /// Parent: removes the segment(s) `rendezvous` names; safe when creation failed half-way.
    func removeSegments(_ rendezvous: Rendezvous)
}

/// A segment the parent created: the rendezvous parameters that name it, or, for one no other process
/// could open by name (a memfd), its open descriptor, which the parent maps to initialise and each
/// worker inherits.
public struct CreatedSegment {
    public var parameters: [String: String]
    public var descriptor: Int32?

    public init(parameters: [String: String] = [:], descriptor: Int32? = nil) {
        self.parameters = parameters
        self.descriptor = descriptor
    }
}

/// A shared-memory ring (RingLayout, RingChannel) in a segment of `Backend`: the parent creates and
/// initialises the segment and any notification objects, each worker maps it and builds its endpoint
/// (SharedRing.endpoint), and the parent removes it in teardown, whatever the outcome.
public struct SharedRingMechanism<Backend: SegmentBackend>: Mechanism {
    public let backend: Backend
    public let sharesMemory = true
    /// Upper bound on slots per ring (tests lower it to stress wrap-around).
    let maximumSlots: Int

    public init(_ backend: Backend, maximumSlots: Int = RingLayout.defaultMaximumSlots) {
        self.backend = backend
        self.maximumSlots = maximumSlots
    }

    public var id: String { backend.id }
    public var summary: String { backend.summary }

    public func variants(for mode: Mode) -> [String] { backend.defaultVariants }
    public func optionalVariants(for mode: Mode) -> [String] { SharedRing.variantNames(excluding: backend.defaultVariants) }
    public func copies(for variant: String) -> Int { SharedRing.copies(for: variant) }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { SharedRing.waitStrategies(for: variant) }
    public func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        SharedRing.waitUnavailableReason(wait, variant: variant)
    }

    public func unavailableReason() -> String? { backend.unavailableReason() }

    /// The segment (a throughput ring of at least 8 slots) must fit the backend's bounds.
    public func messageLimit() -> MessageLimit? { SharedRing.messageLimit(backend.sizeBounds()) }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        let variant = try SharedRingVariant.parse(options.variant, mechanism: id)
        let layout = RingLayout(messageBytes: options.messageBytes, mode: options.mode, maximumSlots: maximumSlots)
        let segment = try backend.createSegment(bytes: SharedRing.objectBytes(layout), workspace: workspace, memoryNode: options.memoryNode)
        var rendezvous = Rendezvous(parameters: segment.parameters)
        do {
            let mapping = try segment.descriptor.map { try SegmentMapping.map(descriptor: $0, bytes: layout.segmentBytes, context: id) }
                ?? backend.mapSegment(rendezvous, bytes: layout.segmentBytes)
            defer { mapping.unmap() }
            try layout.initialize(segment: mapping.base)
            try SharedRing.prepareNotification(variant, layout, &rendezvous, workspace: workspace)
            if let descriptor = segment.descriptor { try SharedRing.handOver(segment: descriptor, in: &rendezvous) }
            return rendezvous
        } catch {
            (rendezvous.producerDescriptors + rendezvous.consumerDescriptors).forEach { close($0) }
            if let descriptor = segment.descriptor, !rendezvous.producerDescriptors.contains(descriptor) { close(descriptor) }
            backend.removeSegments(rendezvous)
            SharedRing.teardownNotification(rendezvous)
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
        backend.removeSegments(rendezvous)
        SharedRing.teardownNotification(rendezvous)
    }

    /// A worker's endpoint for `role` over the segment `rendezvous` names.
    func open(_ rendezvous: Rendezvous, _ options: EndpointOptions, role: Role) throws -> any MessageEndpoint {
        let layout = try RingLayout(rendezvous)
        let mapping = try backend.mapSegment(rendezvous, bytes: layout.segmentBytes)
        return try SharedRing.endpoint(mapping: mapping, layout: layout, rendezvous: rendezvous, options: options, role: role, mechanism: id)
    }
}
