import CIPCShim
import Glibc

/// A worker's own io_uring, for `--wait uring` and `uring-sqpoll`: an endpoint's read, write, recv or
/// send is queued on it and the call returns with the completion, as the system call would (the count,
/// or -1 with errno). One operation is in flight at a time, so completions come back in order.
///
/// Made through the raw system calls in the C shim, not liburing, so the binary needs no library and
/// starts where io_uring is disabled; such cells are unavailable (`unavailableReason`).
///
/// `@unchecked Sendable`: a ring is made, used and closed by one worker thread; the type is only
/// stored in `ReadinessWaiter`, whose shared `blocking` value has none.
struct CompletionRing: @unchecked Sendable {
    /// Submission slots: one operation in flight, a few spare.
    static let entries: UInt32 = 8
    /// An SQPOLL thread with nothing to submit for this long sleeps; the next submission then costs
    /// one io_uring_enter to wake it. Short, because on a small machine the thread's polling takes
    /// CPU time from the workers.
    static let submissionThreadIdleMilliseconds: UInt32 = 10
    /// The user data of the operations this type queues.
    private static let operationTag: UInt64 = 1

    private let ring: UnsafeMutablePointer<ipcb_uring>
    private let submissionPolling: Bool
    /// SQPOLL: how long a worker polls the completion queue before it sleeps in io_uring_enter.
    private let pollNanoseconds: UInt64

    init(options: EndpointOptions) throws {
        // The polling thread inherits its worker's CPUs. A worker pinned to one CPU that polled its
        // completion queue would only keep its own polling thread from submitting the operation (the
        // latency then measured the poll bound), so such a worker sleeps in io_uring_enter at once.
        let sharesCPUWithPollingThread = options.peerSharesCPU || Affinity.allowedCPUs().count == 1
        try self.init(submissionPolling: options.wait == .uringSQPoll,
                      pollNanoseconds: sharesCPUWithPollingThread ? 0 : options.spinThenBlockNanoseconds)
    }

    init(submissionPolling: Bool, pollNanoseconds: UInt64 = 0) throws {
        ring = .allocate(capacity: 1)
        let result = ipcb_uring_open(ring, Self.entries, submissionPolling ? 1 : 0, -1, Self.submissionThreadIdleMilliseconds)
        guard result == 0 else {
            ring.deallocate()
            throw IPCError.system(call: "io_uring_setup", errno: -result, context: submissionPolling ? "IORING_SETUP_SQPOLL" : "")
        }
        if let missing = ipcb_uring_missing_feature(ring) {
            ipcb_uring_close(ring)
            ring.deallocate()
            throw IPCError.setup("this kernel's io_uring has \(String(cString: missing))")
        }
        self.submissionPolling = submissionPolling
        self.pollNanoseconds = pollNanoseconds
    }

    /// The ring's descriptor (IORING_OP_MSG_RING targets another process's ring by it).
    var descriptor: Int32 { ring.pointee.fd }

    /// Completions reaped so far (the completion queue's head, which counts from 0).
    var completionsSoFar: UInt32 { ring.pointee.cq_head.pointee }

    func close() {
        ipcb_uring_close(ring)
        ring.deallocate()
    }

    /// Why io_uring cannot be used here (checked once per process by making a ring), or nil.
    static func unavailableReason(submissionPolling: Bool) -> String? {
        submissionPolling ? submissionPollingProbe : plainProbe
    }

    private static let plainProbe = probe(submissionPolling: false)
    private static let submissionPollingProbe = probe(submissionPolling: true)

    private static func probe(submissionPolling: Bool) -> String? {
        do {
            try CompletionRing(submissionPolling: submissionPolling).close()
            return nil
        } catch {
            var reason = "io_uring is not usable here: \(error)"
            if let disabled = SystemFacts.readInt("/proc/sys/kernel/io_uring_disabled"), disabled != 0 {
                reason += " (kernel.io_uring_disabled = \(disabled))"
            } else {
                reason += " (a seccomp filter, as container runtimes install, or a kernel without io_uring)"
            }
            return reason
        }
    }

    // MARK: Operations (each returns the count, or -1 with errno, like the system call)

    @inline(__always)
    func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        ipcb_uring_queue_read(ring, fd, buffer, UInt32(clamping: count), Self.operationTag)
        return complete()
    }

    @inline(__always)
    func write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        ipcb_uring_queue_write(ring, fd, buffer, UInt32(clamping: count), Self.operationTag)
        return complete()
    }

    @inline(__always)
    func receive(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, flags: Int32) -> Int {
        ipcb_uring_queue_receive(ring, fd, buffer, UInt32(clamping: count), flags, Self.operationTag)
        return complete()
    }

    @inline(__always)
    func send(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, flags: Int32) -> Int {
        ipcb_uring_queue_send(ring, fd, buffer, UInt32(clamping: count), flags, Self.operationTag)
        return complete()
    }

    // MARK: Messages between rings (IORING_OP_MSG_RING)

    /// Posts a completion carrying `userData` (not 1, this type's own tag) into the ring whose
    /// descriptor is `target`, possibly another process's: one io_uring_enter, which runs the post
    /// inline, so a failure is in this ring when it returns. Only a failure posts here; reaping also
    /// takes the peer's messages waiting in this ring, which is fine for wake-ups (see
    /// `awaitMessages`).
    @inline(__always)
    func post(_ userData: UInt64, toRing target: Int32) throws {
        ipcb_uring_queue_message(ring, target, 0, userData, Self.operationTag)
        let submitted = ipcb_uring_submit_and_wait(ring, 0)
        if submitted < 0 { throw IPCError.system(call: "io_uring_enter", errno: -submitted, context: "IORING_OP_MSG_RING") }
        try drainMessages()
    }

    /// Waits in io_uring_enter until the peer has posted at least one message, and takes every
    /// message there is, so wake-ups merge as an eventfd's counts do. Throws when one is the
    /// failure of this side's own post.
    @inline(__always)
    func awaitMessages() throws {
        while ipcb_uring_completions_ready(ring) == 0 {
            let waited = ipcb_uring_submit_and_wait(ring, 1)
            if waited < 0 { throw IPCError.system(call: "io_uring_enter", errno: -waited, context: "waiting for a message") }
        }
        try drainMessages()
    }

    /// Takes every completion in this ring; throws on a failed post of this side's.
    @inline(__always)
    private func drainMessages() throws {
        var userData: UInt64 = 0
        var result: Int32 = 0
        while ipcb_uring_reap(ring, &userData, &result) != 0 {
            if userData == Self.operationTag {
                throw IPCError.system(call: "IORING_OP_MSG_RING", errno: -result, context: "posting to the peer's ring")
            }
        }
    }

    /// Submits the queued operation (SQPOLL: its polling thread does, woken if idle, while this side
    /// polls for up to `pollNanoseconds`), sleeps in io_uring_enter until it completes, and returns
    /// its result.
    @inline(__always)
    private func complete() -> Int {
        if submissionPolling {
            let woken = ipcb_uring_wake_submitter(ring)
            if woken < 0 { return fail(woken) }
            if pollNanoseconds > 0 { pollCompletionQueue() }
        }
        var userData: UInt64 = 0
        var result: Int32 = 0
        while ipcb_uring_reap(ring, &userData, &result) == 0 {
            let waited = ipcb_uring_submit_and_wait(ring, 1)
            if waited < 0 { return fail(waited) }
        }
        return result >= 0 ? Int(result) : fail(result)
    }

    /// SQPOLL: returns once a completion is ready or `pollNanoseconds` have passed (the clock read
    /// every 64 polls). Out of line: the wait is long anyway.
    @inline(never)
    private func pollCompletionQueue() {
        let start = MonotonicClock.now()
        var polls: UInt32 = 0
        while ipcb_uring_completions_ready(ring) == 0 {
            ipcb_cpu_relax()
            polls &+= 1
            if polls & 63 == 0, MonotonicClock.now() &- start >= pollNanoseconds { return }
        }
    }

    @inline(__always)
    private func fail(_ negativeErrno: Int32) -> Int {
        errno = -negativeErrno
        return -1
    }
}
