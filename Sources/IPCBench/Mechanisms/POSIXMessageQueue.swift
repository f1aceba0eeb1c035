import CIPCShim
import Glibc
import SystemPackage

/// POSIX message queues (mq_send / mq_receive), one per direction. The parent creates both with
/// unguessable names (`OwnedNames.posixName`: `/ipcbench-<pid>-<random>-to-consumer` / `-to-producer`;
/// O_CREAT | O_EXCL, mode 0600),
/// sized for the cell, and closes them; each worker opens them by name, as unrelated processes
/// would; the parent unlinks them in teardown, whatever the outcome.
public struct POSIXMessageQueueMechanism: Mechanism {
    public init() {}
    public let id = "posix-mq"
    public let summary = "POSIX message queue pair (mq_send/mq_receive), opened by name by each worker"

    /// Queue depth wanted when the system allows it: enough to keep a streaming producer ahead.
    static let preferredDepth = 64
    /// Kernel bookkeeping charged to RLIMIT_MSGQUEUE per message slot beyond its bytes
    /// (struct msg_msg plus a priority tree node, under 128 bytes on 64-bit kernels).
    static let slotOverheadBytes = 128

    static let messageSizePath = "/proc/sys/fs/mqueue/msgsize_max"
    static let depthPath = "/proc/sys/fs/mqueue/msg_max"

    public func variants(for mode: Mode) -> [String] { ["mq_send/mq_receive"] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.readinessBased }
    public var completionRingUnavailableReason: String { "mq_send and mq_receive have no io_uring operation" }

    public func unavailableReason() -> String? {
        SystemFacts.readInt(Self.messageSizePath) == nil
            ? "POSIX message queues are not available (\(Self.messageSizePath) is missing; kernel without CONFIG_POSIX_MQUEUE?)"
            : nil
    }

    /// mq_open refuses an mq_msgsize over fs.mqueue.msgsize_max (to unprivileged users; the tool
    /// keeps to it for everyone so results do not depend on who runs it).
    public func messageLimit() -> MessageLimit? {
        SystemFacts.readInt(Self.messageSizePath).map {
            MessageLimit(
                bytes: $0,
                source: "fs.mqueue.msgsize_max = \($0) (\(Self.messageSizePath)); raise with sysctl -w fs.mqueue.msgsize_max=BYTES")
        }
    }

    /// Whether a queue of this name exists (for leftover checks; does not need /dev/mqueue).
    public static func queueExists(named name: String) -> Bool {
        let descriptor = ipcb_mq_open(name, O_RDONLY)
        if descriptor >= 0 {
            _ = ipcb_mq_close(descriptor)
            return true
        }
        return errno != ENOENT
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        let depth = Self.depth(messageBytes: options.messageBytes)
        var attempt = 1
        while true {
            let names = (toConsumer: OwnedNames.posixName("to-consumer"), toProducer: OwnedNames.posixName("to-producer"))
            do {
                try Self.create(names.toConsumer, depth: depth, messageBytes: options.messageBytes)
                do {
                    try Self.create(names.toProducer, depth: depth, messageBytes: options.messageBytes)
                } catch {
                    _ = ipcb_mq_unlink(names.toConsumer)
                    throw error
                }
                return Rendezvous(parameters: ["to-consumer": names.toConsumer, "to-producer": names.toProducer])
            } catch let IPCError.system(_, code, _) where code == EEXIST && attempt < 8 {
                // Someone else's object under that name: never ours to open or remove; draw new names.
                attempt += 1
            }
        }
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let endpoint = try Self.endpoint(
            receiveFrom: rendezvous.require("to-consumer"), sendTo: rendezvous.require("to-producer"), options)
        return ImmediateListener { endpoint }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        try Self.endpoint(receiveFrom: rendezvous.require("to-producer"), sendTo: rendezvous.require("to-consumer"), options)
    }

    /// Every queue the rendezvous names (a pair's two, or a fan-in cell's request queue and its
    /// clients' reply queues).
    public func teardown(_ rendezvous: Rendezvous) {
        for (key, name) in rendezvous.parameters where key.hasPrefix("to-") { _ = ipcb_mq_unlink(name) }
    }

    /// A queue under a new unguessable name, drawing again if the name is taken (someone else's).
    static func createFresh(_ label: String, depth: Int, messageBytes: Int) throws -> String {
        var attempt = 1
        while true {
            let name = OwnedNames.posixName(label)
            do {
                try create(name, depth: depth, messageBytes: messageBytes, queues: 1)
                return name
            } catch let IPCError.system(_, code, _) where code == EEXIST && attempt < 8 {
                attempt += 1
            }
        }
    }

    /// min(fs.mqueue.msg_max, preferred depth), further limited so that the cell's `queues` fit in
    /// this user's RLIMIT_MSGQUEUE (default 819200 bytes) at this message size.
    static func depth(messageBytes: Int, queues: Int = 2) -> Int {
        var depth = min(SystemFacts.readInt(depthPath) ?? 10, preferredDepth)
        if let budget = messageQueueByteLimit() {
            depth = min(depth, budget / queues / (messageBytes + slotOverheadBytes))
        }
        return max(1, depth)
    }

    /// The soft RLIMIT_MSGQUEUE in bytes, or nil when unlimited.
    static func messageQueueByteLimit() -> Int? {
        let bytes = ipcb_mq_byte_limit()
        return bytes >= 0 ? Int(bytes) : nil
    }

    private static func create(_ name: String, depth: Int, messageBytes: Int, queues: Int = 2) throws {
        let descriptor = ipcb_mq_create(name, O_RDWR | O_EXCL, 0o600, depth, messageBytes)
        guard descriptor >= 0 else {
            let code = errno
            let call = "mq_open \(name) (\(depth) × \(messageBytes) bytes)"
            let reason = String(cString: strerror(code))
            switch code {
            case EMFILE, ENOMEM:
                // The kernel charges each queue's depth × (size + bookkeeping) to the user's RLIMIT_MSGQUEUE.
                let limit = messageQueueByteLimit().map { "\($0) bytes" } ?? "unlimited"
                let needed = queues * depth * (messageBytes + slotOverheadBytes)
                throw IPCError.setup(
                    "\(call): \(reason): the per-user message queue limit RLIMIT_MSGQUEUE is \(limit) (ulimit -q) and this cell's queues need about \(needed) bytes on top of this user's other queues (or the process is out of descriptors)")
            case ENOSPC:
                let limit = SystemFacts.readInt("/proc/sys/fs/mqueue/queues_max").map { " (fs.mqueue.queues_max = \($0))" } ?? ""
                throw IPCError.setup("\(call): \(reason): the system's limit on message queues\(limit) is reached")
            case EINVAL:
                throw IPCError.setup(
                    "\(call): \(reason): over fs.mqueue.msg_max / msgsize_max (\(depthPath), \(messageSizePath))")
            default:
                throw IPCError.system(call: "mq_open", errno: code, context: name)
            }
        }
        _ = ipcb_mq_close(descriptor)
    }

    static func open(_ name: String, _ flags: Int32) throws -> Int32 {
        do throws(Errno) {
            return try SystemCall.retrying { ipcb_mq_open(name, flags) }
        } catch {
            throw IPCError.system("mq_open", error, name)
        }
    }

    private static func endpoint(receiveFrom: String, sendTo: String, _ options: EndpointOptions) throws -> POSIXMessageQueueEndpoint {
        let receiving = try open(receiveFrom, O_RDONLY)
        let sending: Int32
        do {
            sending = try open(sendTo, O_WRONLY)
        } catch {
            _ = ipcb_mq_close(receiving)
            throw error
        }
        let endpoint: POSIXMessageQueueEndpoint
        do {
            endpoint = try POSIXMessageQueueEndpoint(sendQueue: sending, receiveQueue: receiving, options: options)
        } catch {
            _ = ipcb_mq_close(sending)
            _ = ipcb_mq_close(receiving)
            throw error
        }
        do {
            try checkMessageSize(receiving, receiveFrom, options.messageBytes)
            try checkMessageSize(sending, sendTo, options.messageBytes)
        } catch {
            endpoint.close()
            throw error
        }
        return endpoint
    }

    /// mq_receive needs a buffer of at least mq_msgsize: checks the queue is what prepare made.
    static func checkMessageSize(_ descriptor: Int32, _ name: String, _ expected: Int) throws {
        var depth = 0, messageBytes = 0, waiting = 0
        guard ipcb_mq_attributes(descriptor, &depth, &messageBytes, &waiting) == 0 else {
            throw IPCError.lastSystemError("mq_getattr", name)
        }
        guard messageBytes == expected else {
            throw IPCError.setup("\(name) carries \(messageBytes)-byte messages, the cell \(expected)")
        }
    }
}

/// One side's two queue descriptors and private buffers (allocated once): `fill` writes the send
/// buffer, mq_send copies it into the kernel, mq_receive copies out into the receive buffer.
///
/// `--wait sigio` is mq_notify, since a queue descriptor raises no SIGIO of its own: an empty receive
/// queue asks for SIGIO on the next arrival, and the worker waits in sigwaitinfo. Nothing signals
/// room in a full queue, so under sigio a sender that finds its queue full blocks in mq_send.
final class POSIXMessageQueueEndpoint: MessageEndpoint {
    private let sendQueue: Int32
    private let receiveQueue: Int32
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer
    /// Queue descriptors are file descriptors on Linux (O_NONBLOCK, poll and epoll work on them).
    private let waiter: ReadinessWaiter
    /// `sigio`: waits for arrivals through mq_notify instead of `waiter`.
    private let notifiedOfArrivals: Bool
    /// An mq_notify registration is pending (it is one-shot: the signal removes it).
    private var arrivalNotificationRequested = false

    init(sendQueue: Int32, receiveQueue: Int32, options: EndpointOptions) throws {
        self.sendQueue = sendQueue
        self.receiveQueue = receiveQueue
        notifiedOfArrivals = options.wait == .sigio
        if notifiedOfArrivals {
            // mq_notify's signal is process-directed: no thread may leave SIGIO to its default action.
            try SignalMask.blockInEveryThread(SIGIO)
            let flags = fcntl(receiveQueue, F_GETFL)
            guard flags >= 0, fcntl(receiveQueue, F_SETFL, flags | O_NONBLOCK) == 0 else { throw IPCError.lastSystemError("fcntl(O_NONBLOCK)") }
            waiter = .blocking
        } else {
            waiter = try ReadinessWaiter(options: options, readDescriptor: receiveQueue, writeDescriptor: sendQueue)
        }
        let messageBytes = options.messageBytes
        sendBuffer = PrivateBuffer(byteCount: messageBytes)
        receiveBuffer = PrivateBuffer(byteCount: messageBytes)
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        while true {
            do throws(Errno) {
                _ = try SystemCall.retrying { ipcb_mq_send(sendQueue, message.baseAddress, size) }
                return
            } catch .wouldBlock {
                try waiter.waitWritable(sendQueue)
            } catch {
                throw IPCError.system("mq_send", error)
            }
        }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        while true {
            let count: Int
            do throws(Errno) {
                // The buffer is exactly mq_msgsize (the cell's size), as mq_receive requires.
                count = try SystemCall.retrying { ipcb_mq_receive(receiveQueue, receiveBuffer.bytes.baseAddress, receiveBuffer.bytes.count) }
            } catch .wouldBlock {
                if notifiedOfArrivals {
                    try waitForArrival()
                } else {
                    try waiter.waitReadable(receiveQueue)
                }
                continue
            } catch {
                throw IPCError.system("mq_receive", error)
            }
            guard count == size else {
                throw IPCError.setup("mq_receive: a message of \(count) bytes arrived where \(size) were expected")
            }
            consume(UnsafeRawBufferPointer(rebasing: receiveBuffer.bytes[0..<size]))
            return true
        }
    }

    /// After mq_receive found the queue empty. The first call registers for the signal and returns,
    /// because a message that arrived before the registration raises none: the receive is retried.
    /// The next sleeps until SIGIO (the registration is then gone). EBUSY means ours is still
    /// pending: no other process can open the queue (mode 0600, an unguessable name).
    private func waitForArrival() throws {
        if !arrivalNotificationRequested {
            guard ipcb_mq_notify_signal(receiveQueue, SIGIO) == 0 || errno == EBUSY else { throw IPCError.lastSystemError("mq_notify") }
            arrivalNotificationRequested = true
            return
        }
        do throws(Errno) {
            _ = try SystemCall.retrying { ipcb_wait_sigio(-1) }
        } catch {
            throw IPCError.system("sigwaitinfo", error)
        }
        arrivalNotificationRequested = false
    }

    func close() {
        waiter.close()
        _ = ipcb_mq_close(sendQueue)
        _ = ipcb_mq_close(receiveQueue)
    }
}
