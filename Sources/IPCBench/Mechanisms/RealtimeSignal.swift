import CIPCShim
import Glibc

/// Real-time signals as a message channel: sigqueue carries the sequence number in the signal's one
/// value (a sigval, 8 bytes), and the receiver takes it with sigwaitinfo on a blocked SIGRTMIN+4 —
/// no handler runs in the timed path. Queued real-time signals are reliable and kept in order.
///
/// The consumer publishes its pid; the producer's arrives with its first signal (si_pid). The
/// payload is the sequence number only: messages are 16 bytes (the harness's header), the consumer
/// rebuilds the header with a zero send time, and the mechanism declares `carriesSendTimestamp`
/// false so no one-way delay is recorded. Streaming is flow-controlled (the consumer acknowledges
/// every half window) so the queued signals stay far below the per-user RLIMIT_SIGPENDING.
///
/// Under `--wait block` the receiver sleeps in sigwaitinfo. Every other strategy reads the blocked
/// signal from a non-blocking signalfd and waits for it to become readable in the strategy's way.
public struct RealtimeSignalMechanism: Mechanism {
    public init() {}
    public let id = "signal"
    public let summary = "Real-time signal (SIGRTMIN+4): sigqueue carries the sequence number, sigwaitinfo (or a signalfd) receives it, no handler"

    static let variant = "sigqueue/sigwaitinfo (8-byte value)"
    /// Streaming window: at most this many signals queued at the consumer.
    static let preferredWindow = 128

    public func variants(for mode: Mode) -> [String] { [Self.variant] }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.readinessBased.filter { $0 != .sigio } }

    public func waitUnavailableReason(_ wait: WaitStrategy, variant: String) -> String? {
        wait == .sigio ? "the signal is itself the notification, and its signalfd raises no SIGIO (no O_ASYNC support)" : unlistedWaitReason(wait, variant: variant)
    }
    /// sigqueue copies the value into the kernel's queue entry; sigwaitinfo copies it out into siginfo.
    public var completionRingUnavailableReason: String { "sigqueue has no io_uring operation (the signalfd's reads could go through one; not done)" }
    public func copies(for variant: String) -> Int { 2 }
    public var carriesSendTimestamp: Bool { false }

    public func messageLimit() -> MessageLimit? {
        MessageLimit(
            bytes: MessageFormat.headerBytes,
            source: "a signal carries one sigval (8 bytes): only the sequence number; the 16-byte header is rebuilt without the send time")
    }

    public func unavailableReason() -> String? {
        if Self.signalNumber > ipcb_sigrtmax() { return "SIGRTMIN+4 is beyond SIGRTMAX (\(ipcb_sigrtmax())) on this system" }
        if Self.window() < 2 {
            return "RLIMIT_SIGPENDING (\(ipcb_pending_signal_limit()) queued signals per user) is too low to stream real-time signals"
        }
        return nil
    }

    /// The signal used in both directions (each process blocks its own copy).
    static var signalNumber: Int32 { ipcb_sigrtmin() + 4 }

    /// The flow-control window, kept well under the per-user limit of queued signals.
    static func window() -> Int {
        let limit = ipcb_pending_signal_limit()
        guard limit >= 0 else { return preferredWindow }
        return min(preferredWindow, Int(limit / 4)) & ~1
    }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        Rendezvous()
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        try SignalMask.blockInEveryThread(Self.signalNumber)
        return ImmediateListener(published: ["pid": String(getpid())]) {
            try SignalEndpoint(signal: Self.signalNumber, peer: 0, role: .consumer, options: options, window: Self.window())
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        guard let text = published["pid"], let consumer = pid_t(text), consumer > 0 else {
            throw IPCError.setup("the consumer did not publish its pid")
        }
        try SignalMask.blockInEveryThread(Self.signalNumber)
        return try SignalEndpoint(signal: Self.signalNumber, peer: consumer, role: .producer, options: options, window: Self.window())
    }
}

/// One side of a signal channel. Timed calls are one sigqueue and one sigwaitinfo (or signalfd
/// read), through the shim.
final class SignalEndpoint: MessageEndpoint {
    private let signal: Int32
    private let waitSet: UnsafeMutablePointer<sigset_t>
    /// Every strategy but `block`: a non-blocking signalfd for the signal, and how to wait on it; else -1.
    private let signalDescriptor: Int32
    private let waiter: ReadinessWaiter
    /// The other side's pid: published by the consumer; learned by the consumer from the first signal.
    private var peer: pid_t
    private let role: Role
    private let mode: Mode
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer
    private let siQueue = ipcb_si_queue_code()

    // Streaming flow control: the producer stops at `window` signals not yet acknowledged; the
    // consumer acknowledges (a signal carrying its count) every `window / 2`.
    private let window: UInt64
    private var sent: UInt64 = 0
    private var acknowledged: UInt64 = 0
    private var received: UInt64 = 0

    init(signal: Int32, peer: pid_t, role: Role, options: EndpointOptions, window: Int) throws {
        self.signal = signal
        self.peer = peer
        self.role = role
        mode = options.mode
        self.window = UInt64(window)
        waitSet = .allocate(capacity: 1)
        _ = ipcb_sigset_single(waitSet, signal)
        if options.wait == .block {
            signalDescriptor = -1
            waiter = .blocking
        } else {
            signalDescriptor = ipcb_signalfd(waitSet)
            guard signalDescriptor >= 0 else {
                let failure = IPCError.lastSystemError("signalfd")
                waitSet.deallocate()
                throw failure
            }
            do {
                waiter = try ReadinessWaiter(options: options, readDescriptor: signalDescriptor, writeDescriptor: -1)
            } catch {
                Glibc.close(signalDescriptor)
                waitSet.deallocate()
                throw error
            }
        }
        sendBuffer = PrivateBuffer(byteCount: options.messageBytes)
        receiveBuffer = PrivateBuffer(byteCount: options.messageBytes)
    }

    deinit {
        waitSet.deallocate()
    }

    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        if mode == .throughput, role == .producer {
            while sent &- acknowledged >= window {
                acknowledged = try wait()
            }
        }
        // Only the sequence number travels; the send time cannot.
        try queue(MessageFormat.sequence(of: UnsafeRawBufferPointer(message)))
        sent &+= 1
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let message = receiveBuffer.prefix(size)
        let sequence = try wait()
        MessageFormat.stamp(message, sequence: sequence, sentAt: 0)
        if mode == .throughput, role == .consumer {
            received &+= 1
            // Not after the end marker: the producer may already have exited.
            if received % (window / 2) == 0, sequence & MessageFormat.endMarker == 0 {
                try acknowledge(received)
            }
        }
        consume(UnsafeRawBufferPointer(message))
        return true
    }

    func close() {
        guard signalDescriptor >= 0 else { return }
        waiter.close()
        Glibc.close(signalDescriptor)
    }

    @inline(__always)
    private func queue(_ value: UInt64) throws {
        guard ipcb_sigqueue_value(peer, signal, value) == 0 else { throw queueFailure() }
    }

    /// The consumer's acknowledgement of `count` signals. A producer that has already sent its end
    /// marker and exited (ESRCH) needs none; a producer that failed reports that itself.
    private func acknowledge(_ count: UInt64) throws {
        if ipcb_sigqueue_value(peer, signal, count) == 0 || errno == ESRCH { return }
        throw queueFailure()
    }

    private func queueFailure() -> IPCError {
        let code = errno
        let context = code == EAGAIN
            ? "to pid \(peer): RLIMIT_SIGPENDING (\(ipcb_pending_signal_limit()) queued signals per user) reached"
            : "to pid \(peer)"
        return IPCError.system(call: "sigqueue", errno: code, context: context)
    }

    /// The value of the next signal, which must come from the peer through sigqueue.
    @inline(__always)
    private func wait() throws -> UInt64 {
        var value: UInt64 = 0
        var sender: pid_t = 0
        var code: Int32 = 0
        if signalDescriptor < 0 {
            guard ipcb_sigwait_value(waitSet, &value, &sender, &code) >= 0 else { throw IPCError.lastSystemError("sigwaitinfo") }
        } else {
            while true {
                let read = ipcb_signalfd_read_value(signalDescriptor, &value, &sender, &code)
                if read > 0 { break }
                guard read == 0 else { throw IPCError.lastSystemError("read(signalfd)") }
                try waiter.waitReadable(signalDescriptor)
            }
        }
        if peer == 0 { peer = sender }
        guard sender == peer, code == siQueue else {
            throw IPCError.worker("signal \(signal) came from pid \(sender) with si_code \(code), not from the peer (pid \(peer)) through sigqueue")
        }
        return value
    }
}
