import Glibc
import SystemPackage

/// System V message queues (msgget / msgsnd / msgrcv). The parent creates exclusive queues
/// (keys tagged with its pid, IPC_EXCL, mode 0600, so `ipcbench clean` can find a crashed run's) and passes their ids to the workers; it removes them (IPC_RMID) in
/// teardown, whatever the outcome.
///
/// Variants: `two-queues` (one queue per direction, the classic layout and the one the C reference
/// uses) and `one-queue/mtype` (both directions in one queue, told apart by the message type:
/// 1 = to the consumer, 2 = to the producer), which shares one queue's capacity between the directions.
public struct SysVMessageQueueMechanism: Mechanism {
    public init() {}
    public let id = "sysv-msg"
    public let summary = "System V message queues (msgsnd/msgrcv), private queues created by the parent"

    public static let twoQueues = "two-queues"
    public static let oneQueue = "one-queue/mtype"

    /// Message types: msgsnd requires a positive type; one-queue/mtype receives by type.
    static let toConsumerType = 1
    static let toProducerType = 2

    static let maximumMessagePath = "/proc/sys/kernel/msgmax"
    static let queueCapacityPath = "/proc/sys/kernel/msgmnb"

    public func variants(for mode: Mode) -> [String] { [Self.twoQueues] }
    public func optionalVariants(for mode: Mode) -> [String] { [Self.oneQueue] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { [.block, .poll, .spinThenBlock] }
    public var completionRingUnavailableReason: String { "msgsnd and msgrcv have no io_uring operation" }

    public func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        switch wait {
        case .block, .poll, .spinThenBlock: nil
        case .epoll, .sigio: "System V queues are not file descriptors: there is nothing to epoll or to raise SIGIO (poll and spin-then-block use IPC_NOWAIT)"
        case .timed: "msgsnd and msgrcv have no timeout: System V queues offer no timed wait"
        case .uring, .uringSQPoll: unlistedWaitReason(wait, variant: variant)
        }
    }

    public func unavailableReason() -> String? {
        SystemFacts.readInt(Self.maximumMessagePath) == nil
            ? "System V message queues are not available (\(Self.maximumMessagePath) is missing; kernel without CONFIG_SYSVIPC?)"
            : nil
    }

    /// msgsnd refuses a message over kernel.msgmax (EINVAL), and one over the queue's capacity
    /// (kernel.msgmnb at creation) would block forever, so a message must fit both.
    public func messageLimit() -> MessageLimit? {
        let maximum = SystemFacts.readInt(Self.maximumMessagePath)
        let capacity = SystemFacts.readInt(Self.queueCapacityPath)
        if let maximum, capacity.map({ maximum <= $0 }) ?? true {
            return MessageLimit(
                bytes: maximum,
                source: "kernel.msgmax = \(maximum) (\(Self.maximumMessagePath)); raise with sysctl -w kernel.msgmax=BYTES")
        }
        if let capacity {
            return MessageLimit(
                bytes: capacity,
                source: "kernel.msgmnb = \(capacity) (\(Self.queueCapacityPath), a queue's capacity, which a message must fit); raise with sysctl -w kernel.msgmnb=BYTES")
        }
        return nil
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        guard [Self.twoQueues, Self.oneQueue].contains(options.variant) else {
            throw IPCError.setup("sysv-msg has no variant '\(options.variant)'")
        }
        let toConsumer = try Self.createQueue(ledger: workspace)
        var toProducer = toConsumer
        if options.variant == Self.twoQueues {
            do {
                toProducer = try Self.createQueue(ledger: workspace)
            } catch {
                Self.removeQueue(toConsumer)
                throw error
            }
        }
        do {
            for queue in Set([toConsumer, toProducer]) { try Self.checkCapacity(queue, messageBytes: options.messageBytes) }
        } catch {
            Set([toConsumer, toProducer]).forEach(Self.removeQueue)
            throw error
        }
        return Rendezvous(parameters: ["to-consumer": String(toConsumer), "to-producer": String(toProducer)])
    }

    /// Test-only (not in --help): lowers each new queue's capacity (msg_qbytes, IPC_SET) to this many
    /// bytes, so tests can exceed a queue's byte limit without changing kernel.msgmnb for everyone.
    static let queueBytesOverrideVariable = "IPCBENCH_TEST_MSG_QBYTES"

    /// A message larger than the queue's capacity (msg_qbytes, kernel.msgmnb for a new queue) makes
    /// msgsnd block forever rather than fail, so it is refused here, naming the limit.
    private static func checkCapacity(_ queue: Int32, messageBytes: Int) throws {
        var info = msqid_ds()
        if let text = getenv(queueBytesOverrideVariable), let bytes = UInt(String(cString: text)) {
            guard msgctl(queue, IPC_STAT, &info) == 0 else { throw IPCError.lastSystemError("msgctl(IPC_STAT)", "queue \(queue)") }
            info.msg_qbytes = bytes
            guard msgctl(queue, IPC_SET, &info) == 0 else { throw IPCError.lastSystemError("msgctl(IPC_SET)", "queue \(queue)") }
        }
        guard msgctl(queue, IPC_STAT, &info) == 0 else { throw IPCError.lastSystemError("msgctl(IPC_STAT)", "queue \(queue)") }
        guard messageBytes <= Int(info.msg_qbytes) else {
            let system = SystemFacts.readInt(queueCapacityPath).map { "; kernel.msgmnb = \($0)" } ?? ""
            throw IPCError.setup(
                "sysv-msg: a \(messageBytes)-byte message does not fit queue \(queue), whose capacity is \(info.msg_qbytes) bytes (msg_qbytes\(system)); msgsnd would block forever")
        }
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let endpoint = try Self.endpoint(rendezvous, options, role: .consumer)
        return ImmediateListener { endpoint }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        try Self.endpoint(rendezvous, options, role: .producer)
    }

    public func teardown(_ rendezvous: Rendezvous) {
        let ids = Set(["to-consumer", "to-producer"].compactMap { rendezvous.parameters[$0].flatMap { Int32($0) } })
        ids.forEach(Self.removeQueue)
    }

    /// Whether a queue with this id still exists (for leftover checks).
    public static func queueExists(id: Int32) -> Bool {
        var info = msqid_ds()
        return msgctl(id, IPC_STAT, &info) == 0
    }

    private static func createQueue(ledger workspace: String) throws -> Int32 {
        let id = try OwnedNames.createSysV(ledger: workspace) { msgget($0, $1) }
        guard id >= 0 else {
            if errno == ENOSPC {
                let limit = SystemFacts.readInt("/proc/sys/kernel/msgmni").map { " (kernel.msgmni = \($0))" } ?? ""
                throw IPCError.setup("msgget: the system's limit on message queues\(limit) is reached; see ipcs -q")
            }
            throw IPCError.lastSystemError("msgget")
        }
        return id
    }

    private static func removeQueue(_ id: Int32) {
        _ = msgctl(id, IPC_RMID, nil)
    }

    private static func endpoint(_ rendezvous: Rendezvous, _ options: EndpointOptions, role: Role) throws -> SysVMessageEndpoint {
        func queue(_ key: String) throws -> Int32 {
            let text = try rendezvous.require(key)
            guard let id = Int32(text) else { throw IPCError.setup("sysv-msg: '\(text)' is not a queue id") }
            // Fails now, during set-up, if the queue is gone or not ours to use.
            guard queueExists(id: id) else { throw IPCError.lastSystemError("msgctl(IPC_STAT)", "queue \(id)") }
            return id
        }
        let toConsumer = try queue("to-consumer")
        let toProducer = try queue("to-producer")
        // Two queues: take whatever is next (type 0), as the C reference does. One queue: only this
        // side's type, so a side never takes back its own message.
        let oneQueue = options.variant == Self.oneQueue
        switch role {
        case .producer:
            return SysVMessageEndpoint(
                sendQueue: toConsumer, sendType: toConsumerType,
                receiveQueue: toProducer, receiveType: oneQueue ? toProducerType : 0, options: options)
        case .consumer:
            return SysVMessageEndpoint(
                sendQueue: toProducer, sendType: toProducerType,
                receiveQueue: toConsumer, receiveType: oneQueue ? toConsumerType : 0, options: options)
        }
    }
}

/// One side's queues and its two message buffers (`long mtype` followed by the payload), allocated
/// once. `fill` writes straight into the send buffer's payload and `consume` reads the receive
/// buffer's, so the only copies are the kernel's two (msgsnd in, msgrcv out).
final class SysVMessageEndpoint: MessageEndpoint {
    /// The payload starts a cache line into each buffer; mtype sits in the 8 bytes before it.
    private static let payloadOffset = 64
    private static let typeOffset = payloadOffset - MemoryLayout<Int>.size

    private let sendQueue: Int32
    private let receiveQueue: Int32
    private let receiveType: Int
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer
    /// `poll` and `spin-then-block` call with IPC_NOWAIT; the latter falls back to a blocking call
    /// once it has retried for `--spin-then-block`.
    private let waiter: TryWaiter

    init(sendQueue: Int32, sendType: Int, receiveQueue: Int32, receiveType: Int, options: EndpointOptions) {
        let maximumMessageBytes = options.messageBytes
        waiter = TryWaiter(options: options)
        self.sendQueue = sendQueue
        self.receiveQueue = receiveQueue
        self.receiveType = receiveType
        sendBuffer = PrivateBuffer(byteCount: Self.payloadOffset + maximumMessageBytes)
        receiveBuffer = PrivateBuffer(byteCount: Self.payloadOffset + maximumMessageBytes)
        // The type never changes: fill writes only the payload.
        sendBuffer.bytes.storeBytes(of: sendType, toByteOffset: Self.typeOffset, as: Int.self)
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        fill(UnsafeMutableRawBufferPointer(rebasing: sendBuffer.bytes[Self.payloadOffset..<(Self.payloadOffset + size)]))
        let message = UnsafeRawPointer(sendBuffer.bytes.baseAddress! + Self.typeOffset)
        try waiter.wait(for: "room in the queue") { block, _ in
            do throws(Errno) {
                _ = try SystemCall.once { msgsnd(sendQueue, message, size, block ? 0 : Int32(IPC_NOWAIT)) }
                return true
            } catch .interrupted, .wouldBlock {  // EAGAIN: full, under IPC_NOWAIT
                return false
            } catch .identifierRemoved {
                throw IPCError.peerClosed("msgsnd: queue \(sendQueue) was removed")
            } catch {
                throw IPCError.system("msgsnd", error, "queue \(sendQueue)")
            }
        }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = receiveBuffer.bytes.baseAddress! + Self.typeOffset
        var count = -1
        try waiter.wait(for: "message") { block, _ in
            // Without MSG_NOERROR a longer message fails with E2BIG instead of being truncated.
            do throws(Errno) {
                count = try SystemCall.once { msgrcv(receiveQueue, message, size, receiveType, block ? 0 : Int32(IPC_NOWAIT)) }
                return true
            } catch .interrupted, .noMessage {  // ENOMSG: empty, under IPC_NOWAIT
                return false
            } catch .identifierRemoved {
                throw IPCError.peerClosed("msgrcv: queue \(receiveQueue) was removed")
            } catch {
                throw IPCError.system("msgrcv", error, "queue \(receiveQueue)")
            }
        }
        guard count == size else {
            throw IPCError.setup("msgrcv: a message of \(count) bytes arrived where \(size) were expected")
        }
        consume(UnsafeRawBufferPointer(rebasing: receiveBuffer.bytes[Self.payloadOffset..<(Self.payloadOffset + size)]))
        return true
    }

    /// Nothing to close: the queues are the parent's, removed in teardown.
    func close() {}
}
