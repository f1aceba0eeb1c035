import Glibc

/// Which side of a pair a worker plays. The producer sends (and times round trips);
/// the consumer receives, checks and, in latency mode, answers.
public enum Role: String, Codable, Sendable, CaseIterable {
    case producer, consumer
}

/// The largest message a mechanism can carry on this system, and where that figure comes from.
public struct MessageLimit: Sendable, Equatable {
    public var bytes: Int
    public var source: String

    public init(bytes: Int, source: String) {
        self.bytes = bytes
        self.source = source
    }
}

/// What the parent creates for one cell before the workers start, handed to both workers.
///
/// `parameters` are plain strings (paths, ports, ids) that each worker uses to open its endpoint by
/// name. `producerDescriptors` / `consumerDescriptors` are parent-created fds a worker inherits
/// (anonymous pipes); the worker finds them at `Rendezvous.inheritedDescriptor(index)`.
public struct Rendezvous: Codable, Sendable {
    public var parameters: [String: String] = [:]
    public var producerDescriptors: [Int32] = []
    public var consumerDescriptors: [Int32] = []

    public init(parameters: [String: String] = [:]) {
        self.parameters = parameters
    }

    /// Inherited descriptors are dup'ed to fixed numbers from here on in each worker.
    public static let firstInheritedDescriptor: Int32 = 10

    public static func inheritedDescriptor(_ index: Int) -> Int32 {
        firstInheritedDescriptor + Int32(index)
    }

    public func descriptors(for role: Role) -> [Int32] {
        role == .producer ? producerDescriptors : consumerDescriptors
    }

    /// A parameter the mechanism itself put here; a missing one is a programming error in the mechanism.
    public func require(_ key: String) throws -> String {
        guard let value = parameters[key] else {
            throw IPCError.setup("rendezvous parameter '\(key)' is missing")
        }
        return value
    }
}

/// What a cell asks of a mechanism, independent of the mechanism.
public struct EndpointOptions: Codable, Sendable {
    public var mode: Mode
    public var messageBytes: Int
    /// One of the mechanism's `variants(for: mode)`.
    public var variant: String
    /// `--memory-node`, resolved for the cell: shared-memory mechanisms place their segment's pages on
    /// this NUMA node (nil: wherever the kernel puts them; always nil for the other mechanisms).
    public var memoryNode: Int?
    /// Shared-memory cells: the round trip of a bare cache-line ping-pong between the cell's two CPUs,
    /// probed right before the cell (nil: not probed). Spinning waiters pace their polls by it.
    public var cacheLineRoundTripNanoseconds: Double?
    /// `--spin-pauses`: PAUSE instructions between two polls of a spinning waiter (nil: chosen from
    /// the cache-line round trip, see SpinNotifier).
    public var spinPausesPerPoll: Int?
    /// The cell's secret (PeerSecret), given to each worker in its environment, never in the task:
    /// mechanisms that anyone on the host could connect to check that their peer knows it (nil: no
    /// check, as between two hosts).
    public var peerSecret: String?
    /// How each side waits (one of the mechanism's `waitStrategies(for:)`), and the strategy's bounds.
    public var wait = WaitStrategy.block
    public var spinThenBlockNanoseconds = WaitStrategy.defaultSpinNanoseconds
    public var waitTimeoutSeconds = WaitStrategy.defaultTimeoutSeconds
    /// Both workers are pinned to one CPU: a waiter that spins only delays the peer it waits for.
    public var peerSharesCPU = false

    public init(mode: Mode, messageBytes: Int, variant: String, memoryNode: Int? = nil, wait: WaitStrategy = .block) {
        self.wait = wait
        self.mode = mode
        self.messageBytes = messageBytes
        self.variant = variant
        self.memoryNode = memoryNode
    }
}

/// One IPC mechanism: one file per mechanism implements this; the harness knows nothing else about it.
public protocol Mechanism: Sendable {
    /// Stable id used by `--mechanisms` and written to the CSV.
    var id: String { get }
    /// One line for `ipcbench list`.
    var summary: String { get }
    /// The variants measured in `mode`, each its own rows; the CSV's variant column names the copy
    /// path and notification (for example `write/read`, `in-place/futex`).
    func variants(for mode: Mode) -> [String]
    /// Further variants that run only when named with `--variants` (kept out of the default suite).
    func optionalVariants(for mode: Mode) -> [String]
    /// How often the payload is copied between the producer's data and the consumer's use of it.
    func copies(for variant: String) -> Int
    /// True for mechanisms allowed to drop messages (UDP): loss is reported, not a failure.
    var losesMessages: Bool { get }
    /// False when a message cannot carry the producer's send time (a signal's one 8-byte value):
    /// the consumer then records no one-way delay, so those columns stay empty rather than invented.
    var carriesSendTimestamp: Bool { get }
    /// True when the payload moves through memory both workers map: such cells record the
    /// cache-line floor between their two CPUs right before and after they run.
    var sharesMemory: Bool { get }
    /// True for mechanisms that also work between two hosts (`ipcbench serve` / `run --remote`);
    /// they honour `NetworkParameters` in their rendezvous and published parameters.
    var crossesHosts: Bool { get }
    /// The wait strategies this mechanism's `variant` supports (`block` at least); any other is an
    /// unavailable cell, with `waitUnavailableReason`.
    func waitStrategies(for variant: String) -> [WaitStrategy]
    /// Why `wait` cannot run with `variant`, or nil when it can (default: it is not in `waitStrategies`).
    func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String?
    /// Why the io_uring strategies do not apply, for a mechanism that does not list them.
    var completionRingUnavailableReason: String { get }
    /// The largest message this system lets the mechanism carry, or nil when only memory limits it.
    func messageLimit() -> MessageLimit?
    /// Why the mechanism cannot run on this system, or nil when it can.
    func unavailableReason() -> String?

    /// Parent side, before any worker starts: creates what both workers need. Named objects go in
    /// `workspace` (a private directory removed after the cell) or are removed by `teardown`.
    func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous
    /// Consumer worker: binds or opens its side so the producer can find it, without waiting for it.
    func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener
    /// Producer worker: opens its side, by name where the mechanism is meant for unrelated processes.
    func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint
    /// Parent side, after both workers are gone (whatever the outcome): removes what `prepare` made
    /// outside the workspace directory.
    func teardown(_ rendezvous: Rendezvous)
}

extension Mechanism {
    public func optionalVariants(for mode: Mode) -> [String] { [] }
    public var losesMessages: Bool { false }
    public var carriesSendTimestamp: Bool { true }
    public var sharesMemory: Bool { false }
    public var crossesHosts: Bool { false }
    public func messageLimit() -> MessageLimit? { nil }
    public func unavailableReason() -> String? { nil }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { [.block] }

    public func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        unlistedWaitReason(wait, variant: variant)
    }

    public var completionRingUnavailableReason: String { "its calls are not done through io_uring here" }

    /// Why `wait` is not among `waitStrategies(for: variant)`, or nil when it is: the default reason.
    func unlistedWaitReason(_ wait: WaitStrategy, variant: String) -> String? {
        let supported = waitStrategies(for: variant)
        guard !supported.contains(wait) else { return nil }
        if wait.usesCompletionRing { return "\(id) \(variant) has no --wait \(wait.rawValue): \(completionRingUnavailableReason)" }
        return "\(id) \(variant) does not support --wait \(wait.rawValue) (yet); it supports: \(supported.map(\.rawValue).joined(separator: ", "))"
    }
    public func teardown(_ rendezvous: Rendezvous) {}
}
