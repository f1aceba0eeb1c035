import CIPCShim
import Glibc
import SystemPackage

/// The cell's wait strategy for an endpoint over file descriptors. Every strategy but `block` makes
/// the descriptors O_NONBLOCK; then a call that returns EAGAIN hands over to `waitReadable` or
/// `waitWritable`, which return once the call may succeed (or at once, for `poll`, which retries).
/// The successful call's path is the same for every strategy: the strategy costs only when the
/// channel is empty (or full).
///
/// Under the io_uring strategies the descriptors stay blocking and the endpoint's calls go through
/// `read`, `write`, `receive` and `send` here, which hand them to the worker's `CompletionRing`: the
/// kernel performs the call and the waiter waits for its completion.
struct ReadinessWaiter {
    let strategy: WaitStrategy
    /// `uring`, `uring-sqpoll`: the ring the calls go through; else nil (the plain system calls).
    private let completionRing: CompletionRing?
    /// `epoll`: one instance per direction, watching the read (or write) descriptor; else -1.
    private let readEpoll: Int32
    private let writeEpoll: Int32
    private let spinNanoseconds: UInt64
    private let timeoutMilliseconds: Int32
    private let timeoutSeconds: Double

    /// For descriptors left blocking (helpers that wait for nothing but the kernel).
    static let blocking = ReadinessWaiter()

    private init() {
        strategy = .block
        readEpoll = -1
        writeEpoll = -1
        spinNanoseconds = 0
        timeoutMilliseconds = -1
        timeoutSeconds = 0
        completionRing = nil
    }

    /// Sets up `readDescriptor` and `writeDescriptor` (either may be -1, or both the same socket)
    /// for the options' strategy.
    init(options: EndpointOptions, readDescriptor: Int32, writeDescriptor: Int32) throws {
        strategy = options.wait
        spinNanoseconds = options.spinThenBlockNanoseconds
        timeoutSeconds = options.waitTimeoutSeconds
        timeoutMilliseconds = Int32(clamping: Int((options.waitTimeoutSeconds * 1000).rounded(.up)))
        var readEpoll: Int32 = -1, writeEpoll: Int32 = -1
        do {
            if strategy.usesNonBlockingCalls {
                for fd in Set([readDescriptor, writeDescriptor]) where fd >= 0 {
                    let flags = fcntl(fd, F_GETFL)
                    guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw IPCError.lastSystemError("fcntl(O_NONBLOCK)") }
                }
            }
            if strategy == .sigio {
                for fd in Set([readDescriptor, writeDescriptor]) where fd >= 0 {
                    guard ipcb_signal_driven_io(fd) == 0 else { throw IPCError.lastSystemError("fcntl(O_ASYNC, F_SETOWN_EX)") }
                }
            }
            if strategy == .epoll {
                // One epoll instance per direction: a socket that is both read and written would
                // otherwise wake a reader for being writable.
                if readDescriptor >= 0 { readEpoll = try Self.epoll(watching: readDescriptor, writable: false) }
                if writeDescriptor >= 0 { writeEpoll = try Self.epoll(watching: writeDescriptor, writable: true) }
            }
        } catch {
            if readEpoll >= 0 { Glibc.close(readEpoll) }
            throw error
        }
        self.readEpoll = readEpoll
        self.writeEpoll = writeEpoll
        completionRing = strategy.usesCompletionRing ? try CompletionRing(options: options) : nil
    }

    private static func epoll(watching fd: Int32, writable: Bool) throws -> Int32 {
        let instance = ipcb_epoll_watching(fd, writable ? 1 : 0)
        guard instance >= 0 else { throw IPCError.lastSystemError("epoll_create1/epoll_ctl") }
        return instance
    }

    func close() {
        if readEpoll >= 0 { Glibc.close(readEpoll) }
        if writeEpoll >= 0 { Glibc.close(writeEpoll) }
        completionRing?.close()
    }

    /// Completions reaped from the completion ring (nil without one).
    var completionsSoFar: UInt32? { completionRing?.completionsSoFar }

    // MARK: The calls, through the completion ring when there is one (each as its system call)

    @inline(__always)
    func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        if let completionRing { return completionRing.read(fd, buffer, count) }
        return Glibc.read(fd, buffer, count)
    }

    @inline(__always)
    func write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        if let completionRing { return completionRing.write(fd, buffer, count) }
        return Glibc.write(fd, buffer, count)
    }

    @inline(__always)
    func receive(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, flags: Int32) -> Int {
        if let completionRing { return completionRing.receive(fd, buffer, count, flags: flags) }
        return Glibc.recv(fd, buffer, count, flags)
    }

    @inline(__always)
    func send(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, flags: Int32) -> Int {
        if let completionRing { return completionRing.send(fd, buffer, count, flags: flags) }
        return Glibc.send(fd, buffer, count, flags)
    }

    /// After a read of `fd` failed with EAGAIN: returns when reading may succeed.
    @inline(__always)
    func waitReadable(_ fd: Int32) throws {
        _ = try wait(fd, events: Int16(POLLIN), epoll: readEpoll, until: nil, waitingFor: "message")
    }

    /// The same, but only until `deadline` (MonotonicClock ns): false once it has passed with
    /// nothing to read (UDP's retransmission timer). A `timed` wait still ends with its error when
    /// its own, shorter bound passes first.
    @inline(__always)
    func waitReadable(_ fd: Int32, until deadline: UInt64) throws -> Bool {
        try wait(fd, events: Int16(POLLIN), epoll: readEpoll, until: deadline, waitingFor: "message")
    }

    /// After a write to `fd` failed with EAGAIN: returns when writing may succeed.
    @inline(__always)
    func waitWritable(_ fd: Int32) throws {
        _ = try wait(fd, events: Int16(POLLOUT), epoll: writeEpoll, until: nil, waitingFor: "room in the channel")
    }

    /// Returns false when `deadline` had passed; else true once the call may be retried.
    private func wait(_ fd: Int32, events: Int16, epoll: Int32, until deadline: UInt64?, waitingFor what: String) throws -> Bool {
        // Milliseconds left before the deadline, rounded up (-1: no deadline).
        var remaining: Int32 {
            guard let deadline else { return -1 }
            let now = MonotonicClock.now()
            return now >= deadline ? 0 : Int32(clamping: (deadline - now + 999_999) / 1_000_000)
        }
        if let deadline, MonotonicClock.now() >= deadline { return false }
        switch strategy {
        case .poll:
            return true
        case .epoll:
            do throws(Errno) {
                _ = try SystemCall.retrying { ipcb_epoll_wait_one(epoll, remaining) }
            } catch {
                throw IPCError.system("epoll_wait", error)
            }
        case .sigio:
            // A SIGIO already pending (this readiness, or an older one: then the retried call
            // reports EAGAIN again and we come back) returns at once.
            do throws(Errno) {
                _ = try SystemCall.retrying { ipcb_wait_sigio(remaining) }
            } catch .wouldBlock {
                // the deadline passed
            } catch {
                throw IPCError.system("sigwaitinfo", error)
            }
        case .spinThenBlock:
            let start = MonotonicClock.now()
            while MonotonicClock.now() &- start < spinNanoseconds {
                if try poll(fd, events, timeout: 0) { return true }
                if let deadline, MonotonicClock.now() >= deadline { return false }
            }
            _ = try poll(fd, events, timeout: remaining)
        case .timed:
            let bound = remaining
            let timedBoundFirst = bound < 0 || timeoutMilliseconds <= bound
            guard try poll(fd, events, timeout: timedBoundFirst ? timeoutMilliseconds : bound) || !timedBoundFirst else {
                throw IPCError.timeout("no \(what) within \(timeoutSeconds) s (--wait timed, --wait-timeout)")
            }
        case .block, .uring, .uringSQPoll:
            throw IPCError.worker("a blocking descriptor reported EAGAIN")
        }
        // Retry the call: if it finds nothing again, the next wait sees the deadline passed.
        return true
    }

    /// poll(2) on one descriptor; true when it is ready (or in error, which the retried call reports).
    private func poll(_ fd: Int32, _ events: Int16, timeout: Int32) throws -> Bool {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        do throws(Errno) {
            return try SystemCall.retrying { Glibc.poll(&entry, 1, timeout) } > 0
        } catch {
            throw IPCError.system("poll", error)
        }
    }
}
