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

/// One side's open endpoint: the hand-off primitives the harness's one timed loop (Loops) calls.
///
/// Messages are handed over through closures so that copying and in-place (zero-copy) mechanisms
/// share that loop: a copying endpoint lets `fill` write its private buffer and then copies it into
/// the kernel; an in-place endpoint lets `fill` write straight into shared memory. The harness decides
/// what `fill` writes (produce policy), what `consume` reads (touch policy), and reads every clock.
/// In latency mode the loops alternate strictly: the producer sends one message and receives one
/// reply; the consumer receives one message and sends one reply.
public protocol MessageEndpoint: AnyObject {
    /// Sends one message of `size` bytes whose content `fill` writes.
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws
    /// Receives one message of `size` bytes and shows it to `consume` where it lies.
    /// Returns false when the peer closed the channel cleanly before a new message began.
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool
    /// Consumer side of ping-pong: receives one message and shows it to `consume` where it lies;
    /// when `consume` returns true, answers it with a message of the same size whose content `answer`
    /// writes. Calls `arrived` once the message is in hand: before the answer when answering is a
    /// system call (the default: `receive`, `arrived`, `send`), after it when the answer is a store
    /// into memory the producer polls, which a clock read first would only hold back. Returns false
    /// when the peer closed the channel cleanly before a new message began.
    func receiveAndAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool
    /// Releases the endpoint; called once after the loops.
    func close()
    /// Messages lost and then recovered by the mechanism itself (UDP's retransmissions): the
    /// harness's sequence check cannot see them, so the harness adds them to the lost count.
    var recoveredLosses: UInt64 { get }
    /// Test-only (`--inject-fault drop` on a mechanism that may lose messages): lose some on purpose.
    func injectLoss()
    /// Runs the harness's timed loop (Loops.run) over this endpoint. Not for mechanisms to implement:
    /// it is a requirement only so that the one loop is specialised for each concrete endpoint type,
    /// making its calls to send and receive direct. (A test checks that no mechanism defines it.)
    func runHarnessLoop(_ task: WorkerTask) throws -> WorkerResult
}

extension MessageEndpoint {
    public func receiveAndAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool {
        try receiveThenAnswer(size: size, consume: consume, answer: answer, arrived: arrived)
    }

    /// The default answer: `receive`, `arrived`, then `send` when `consume` asks for an answer.
    @inline(__always)
    public func receiveThenAnswer(
        size: Int, consume: (UnsafeRawBufferPointer) -> Bool, answer: (UnsafeMutableRawBufferPointer) -> Void, arrived: () -> Void
    ) throws -> Bool {
        var answers = false
        guard try receive(size: size, consume: { answers = consume($0) }) else { return false }
        arrived()
        if answers { try send(size: size, fill: answer) }
        return true
    }

    public var recoveredLosses: UInt64 { 0 }
    public func injectLoss() {}

    public func runHarnessLoop(_ task: WorkerTask) throws -> WorkerResult {
        try Loops.run(self, task, clock: task.clock)
    }
}

/// The consumer's half-open endpoint: bound or listening, so the producer can be started and told
/// where to connect (`published`), and completed by `accept()` once the producer exists.
public protocol ConsumerListener {
    /// Parameters the producer needs in addition to the rendezvous (for example a port number).
    var published: [String: String] { get }
    func accept() throws -> any MessageEndpoint
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

/// A listener that is complete as soon as it exists (inherited fds, or opens that do not block).
public struct ImmediateListener: ConsumerListener {
    public var published: [String: String] = [:]
    let open: () throws -> any MessageEndpoint

    public init(published: [String: String] = [:], open: @escaping () throws -> any MessageEndpoint) {
        self.published = published
        self.open = open
    }

    public func accept() throws -> any MessageEndpoint { try open() }
}

/// Every mechanism the tool knows, in the order `list` and the default suite use.
public enum MechanismRegistry {
    public static let all: [any Mechanism] = [
        PipeMechanism(),
        FIFOMechanism(),
        UnixStreamMechanism(),
        TCPMechanism(),
        SysVMessageQueueMechanism(),
        POSIXMessageQueueMechanism(),
        UnixDatagramMechanism(.datagram),
        UnixDatagramMechanism(.sequencedPacket),
        UDPMechanism(),
        RealtimeSignalMechanism(),
        VmsplicePipeMechanism(),
        CrossMemoryAttachMechanism(),
        MemfdHandoffMechanism(),
        POSIXSharedMemoryMechanism(),
        SysVSharedMemoryMechanism(),
        MappedFileMechanism(),
        SharedRingMechanism(HugePageSegment()),
        SharedRingMechanism(MemfdSegment()),
    ]

    public static var ids: [String] { all.map(\.id) }

    public static func mechanism(id: String) -> (any Mechanism)? {
        all.first { $0.id == id }
    }

    /// The mechanisms `ipcbench serve` and `run --remote` can run between two hosts.
    public static var acrossHosts: [any Mechanism] { all.filter(\.crossesHosts) }
}
