import CIPCShim
import Foundation
import Glibc
@testable import IPCBench
import Testing

/// Issue 20: io_uring as wait strategies (`uring`, `uring-sqpoll`) and ring-to-ring messages (`uring-msg`).
@Suite("io_uring")
struct UringTests {
    /// unix-dgram is left out: its uring rows are unavailable (the kernel's empty-datagram retry).
    static let descriptorMechanisms = ["pipe", "fifo", "unix-stream", "tcp", "unix-seqpacket"]
    static let strategies: [WaitStrategy] = [.uring, .uringSQPoll]

    static func requireUring() throws {
        if let reason = CompletionRing.unavailableReason(submissionPolling: true) { try Test.cancel("\(reason)") }
    }

    static func expectVerified(_ outcomes: [CellOutcome], count: Int, messages: Int = 10_000) {
        #expect(outcomes.count == count)
        for outcome in outcomes {
            let label = "\(outcome.cell.mechanism.id) \(outcome.cell.variant) \(outcome.cell.wait) \(outcome.cell.mode)"
            #expect(outcome.status.isOK, "\(label): \(outcome.status.text)")
            #expect(outcome.messages == messages && outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0,
                    "\(label): \(outcome.messages) messages, \(outcome.lost) lost, \(outcome.reordered) reordered, \(outcome.corrupt) corrupt")
        }
    }

    /// uring-sqpoll adds four busy threads to a 2-CPU machine, so it runs on one mechanism per code
    /// path (stream reads and writes; datagram recv and send), uring on all.
    static let submissionPollingMechanisms = ["pipe", "unix-seqpacket"]

    @Test("uring moves 10,000 verified messages per cell on every descriptor mechanism that takes it, and uring-sqpoll on each code path, in both modes",
          arguments: descriptorMechanisms)
    func descriptorMechanismsThroughTheRing(mechanism: String) throws {
        try Self.requireUring()
        let waits: [WaitStrategy] = Self.submissionPollingMechanisms.contains(mechanism) ? [.uring, .uringSQPoll] : [.uring]
        let outcomes = TestSupport.run([mechanism], sizes: [64], messages: 10_000, waits: waits)
        Self.expectVerified(outcomes, count: waits.count * Mode.allCases.count)
    }

    @Test("A 64 KiB message crosses a stream in several completions, verified: short reads are resumed")
    func largeMessagesThroughTheRing() throws {
        try Self.requireUring()
        let outcomes = TestSupport.run(["pipe", "unix-stream"], sizes: [65_536], messages: 10_000, waits: [.uring])
        Self.expectVerified(outcomes, count: 2 * Mode.allCases.count)
    }

    @Test("The eventfd-notified ring waits through io_uring, and uring-msg posts each wake-up into the peer's ring: 10,000 verified messages, both modes")
    func ringNotifications() throws {
        try Self.requireUring()
        let eventfd = TestSupport.run(["shm-posix"], sizes: [64], messages: 10_000, waits: Self.strategies, variants: ["in-place/eventfd"])
        Self.expectVerified(eventfd, count: Self.strategies.count * Mode.allCases.count)
        let message = TestSupport.run(["shm-posix", "shm-sysv", "mmap-file"], sizes: [64], messages: 10_000, variants: ["in-place/uring-msg"])
        Self.expectVerified(message, count: 3 * Mode.allCases.count)
        #expect(message.allSatisfy { $0.cell.copies == 0 })
    }

    @Test("uring-msg sleeps in io_uring_enter: it has no other strategy, and says why")
    func messageRingStrategies() {
        let outcomes = TestSupport.run(["shm-posix"], modes: [.latency], sizes: [16], messages: 100, waits: [.poll, .uring], variants: ["in-place/uring-msg"])
        #expect(outcomes.count == 2)
        for outcome in outcomes {
            #expect(outcome.status.text.hasPrefix("unavailable: the uring-msg variant waits in io_uring_enter"), "\(outcome.status.text)")
        }
    }

    @Test("Mechanisms whose calls have no io_uring form give unavailable rows naming the call")
    func withoutCompletionForm() {
        let outcomes = TestSupport.run(["posix-mq", "sysv-msg", "udp"], modes: [.latency], sizes: [16], messages: 100, waits: [.uring])
        #expect(!outcomes.isEmpty)
        for outcome in outcomes {
            let text = outcome.status.text
            #expect(text.hasPrefix("unavailable: \(outcome.cell.mechanism.id) ") && text.contains("has no --wait uring: "), "\(text)")
        }
        #expect(outcomes.contains { $0.status.text.contains("mq_send and mq_receive have no io_uring operation") })
    }

    /// The shortcut these catch: a waiter that keeps plain read(2) and write(2) under `uring` would
    /// pass every message test above.
    @Test("Under uring the waiter's calls are the ring's: a read completes through it, waiting for data that comes later")
    func callsGoThroughTheRing() throws {
        try Self.requireUring()
        for strategy in Self.strategies {
            var fds: [Int32] = [-1, -1]
            try #require(pipe(&fds) == 0)
            defer { close(fds[0]); close(fds[1]) }
            let options = EndpointOptions(mode: .latency, messageBytes: 16, variant: "", wait: strategy)
            let waiter = try ReadinessWaiter(options: options, readDescriptor: fds[0], writeDescriptor: fds[1])
            defer { waiter.close() }
            #expect(fcntl(fds[0], F_GETFL) & O_NONBLOCK == 0, "\(strategy): io_uring needs blocking descriptors")
            #expect(waiter.completionsSoFar == 0)
            let writer = fds[1]
            Thread.detachNewThread {
                usleep(50_000)
                _ = write(writer, "xy", 2)
            }
            var bytes: (UInt8, UInt8) = (0, 0)
            let count = withUnsafeMutableBytes(of: &bytes) { waiter.read(fds[0], $0.baseAddress!, 2) }
            #expect(count == 2 && bytes == (0x78, 0x79), "\(strategy): read \(count)")
            #expect(waiter.write(fds[1], "z", 1) == 1)
            #expect(waiter.completionsSoFar == 2, "\(strategy): \(waiter.completionsSoFar) completions for a read and a write")
        }
    }

    @Test("The stream and datagram endpoints hand every call to the ring under uring: one completion per send and per receive")
    func endpointsUseTheRing() throws {
        try Self.requireUring()
        let options = EndpointOptions(mode: .throughput, messageBytes: 64, variant: "", wait: .uring)
        func exchange(_ sender: some MessageEndpoint, _ receiver: some MessageEndpoint) throws {
            for index in 0..<10 {
                try sender.send(size: 64) { $0.storeBytes(of: UInt64(index), as: UInt64.self) }
                var seen = UInt64.max
                #expect(try receiver.receive(size: 64) { seen = $0.load(as: UInt64.self) })
                #expect(seen == UInt64(index))
            }
        }
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let writer = try StreamEndpoint(readDescriptor: -1, writeDescriptor: fds[1], options: options)
        let reader = try StreamEndpoint(readDescriptor: fds[0], writeDescriptor: -1, options: options)
        try exchange(writer, reader)
        #expect(writer.completionsSoFar == 10 && reader.completionsSoFar == 10, "\(writer.completionsSoFar) \(reader.completionsSoFar)")
        writer.close()
        reader.close()

        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &pair) == 0)
        let sending = try DatagramEndpoint(descriptor: pair[0], options: options, connectsToFirstSender: false, zeroLengthMeansClosed: false)
        let receiving = try DatagramEndpoint(descriptor: pair[1], options: options, connectsToFirstSender: false, zeroLengthMeansClosed: false)
        try exchange(sending, receiving)
        #expect(sending.completionsSoFar == 10 && receiving.completionsSoFar == 10, "\(sending.completionsSoFar) \(receiving.completionsSoFar)")
        sending.close()
        receiving.close()
    }

    @Test("uring-sqpoll runs a kernel submission thread inside the worker's process (so its CPU time is the process's); uring does not")
    func submissionThreadBelongsToTheProcess() throws {
        try Self.requireUring()
        /// The ring's polling thread as /proc/self/fdinfo reports it (-1: none), and that thread's name.
        func pollingThread(_ ring: CompletionRing) -> (id: Int, name: String?) {
            let info = (try? String(contentsOfFile: "/proc/self/fdinfo/\(ring.descriptor)", encoding: .utf8)) ?? ""
            let id = info.split(separator: "\n").first { $0.hasPrefix("SqThread:") }
                .flatMap { Int($0.dropFirst("SqThread:".count).trimmingCharacters(in: .whitespaces)) } ?? -2
            let name = try? String(contentsOfFile: "/proc/self/task/\(id)/comm", encoding: .utf8)
            return (id, name?.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let plain = try CompletionRing(submissionPolling: false)
        #expect(pollingThread(plain).id == -1)
        plain.close()
        let polling = try CompletionRing(submissionPolling: true)
        // fdinfo names the creating thread until the polling thread has started and recorded itself.
        var thread = pollingThread(polling)
        _ = TestSupport.waitFor(seconds: 5) {
            thread = pollingThread(polling)
            return thread.name?.hasPrefix("iou-sqp-") == true
        }
        polling.close()
        #expect(thread.id > 0 && thread.name?.hasPrefix("iou-sqp-") == true, "\(thread)")
    }

    @Test("A post that fails (to a descriptor that is no ring) fails at once, not when the poster next sleeps; wake-ups merge")
    func postsFailAtOnceAndWakeUpsMerge() throws {
        try Self.requireUring()
        let sender = try CompletionRing(submissionPolling: false)
        let receiver = try CompletionRing(submissionPolling: false)
        defer { sender.close(); receiver.close() }
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(throws: IPCError.self) { try sender.post(MessageRingSleeper.dataKind, toRing: fds[0]) }
        for index in 1...3 { try sender.post(MessageRingSleeper.dataKind | UInt64(index), toRing: receiver.descriptor) }
        try receiver.awaitMessages()
        #expect(receiver.completionsSoFar == 3, "three posts, one wait: \(receiver.completionsSoFar) taken")
    }

    @Test("uring-sqpoll with both workers on one CPU is unavailable, saying why")
    func submissionPollingNeedsCPUs() {
        let outcomes = TestSupport.run(["pipe"], modes: [.latency], sizes: [16], messages: 100,
                                       placement: Placement(name: "same-cpu", producerCPU: 0, consumerCPU: 0), waits: [.uringSQPoll])
        #expect(outcomes.count == 1 && outcomes[0].status.text.hasPrefix("unavailable: uring-sqpoll needs CPUs"), "\(outcomes.map(\.status.text))")
    }

    /// Installs a seccomp filter that fails io_uring_setup with EPERM, as Docker's default profile
    /// does, then runs ipcbench under it (workers inherit the filter).
    static let seccompLauncher = """
        import ctypes, os, struct, sys
        libc = ctypes.CDLL(None, use_errno=True)
        def insn(code, jt, jf, k): return struct.pack("HBBI", code, jt, jf, k)
        program = b"".join([
            insn(0x20, 0, 0, 4), insn(0x15, 1, 0, 0xC000003E), insn(0x06, 0, 0, 0x7FFF0000),  # not x86_64: allow
            insn(0x20, 0, 0, 0), insn(0x15, 0, 1, 425), insn(0x06, 0, 0, 0x00050000 | 1),      # io_uring_setup: EPERM
            insn(0x06, 0, 0, 0x7FFF0000)])
        buffer = ctypes.create_string_buffer(program)
        fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buffer))
        fprog_buffer = ctypes.create_string_buffer(fprog)
        word = ctypes.c_ulong
        assert libc.prctl(38, word(1), word(0), word(0), word(0)) == 0  # PR_SET_NO_NEW_PRIVS
        assert libc.prctl(22, word(2), ctypes.c_void_p(ctypes.addressof(fprog_buffer)), word(0), word(0)) == 0, ctypes.get_errno()  # SECCOMP_MODE_FILTER
        os.execv(sys.argv[1], sys.argv[1:])
        """

    @Test("Where a seccomp filter forbids io_uring the tool still runs: io_uring cells are unavailable with the reason, the rest measure, nothing is left")
    func blockedByseccomp() throws {
        guard ProcessInfo.processInfo.environment["IPCBENCH_TEST_NO_SECCOMP"] == nil, machineIsX86_64 else { try Test.cancel("needs x86_64 seccomp") }
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-I", "-c", Self.seccompLauncher, TestSupport.binary, "run", "--mechanisms", "pipe,shm-posix",
                             "--variants", "write/read,in-place/uring-msg", "--wait", "block,uring,uring-sqpoll", "--mode", "latency",
                             "--sizes", "16", "--placements", "cross-cpu", "--repetitions", "1", "--messages", "200", "--quiet", "--no-plots",
                             "--out", scratch + "/r.csv"]
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = scratch
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let rows = try TestSupport.readCSV(scratch + "/r.csv")
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(rows.count == 6, "\(rows.map { $0["status"]! })")
        for row in rows {
            let label = "\(row["mechanism"]!) \(row["variant"]!) \(row["wait"]!)"
            if row["variant"] == "write/read" && row["wait"] == "block" {
                #expect(row["status"] == "ok", "\(label): \(row["status"]!)")
            } else if row["variant"] == "write/read" || row["wait"] == "block" {
                #expect(row["status"]!.hasPrefix("unavailable: io_uring is not usable here: io_uring_setup") == true
                        && row["status"]!.contains("Operation not permitted"), "\(label): \(row["status"]!)")
            } else {
                #expect(row["status"]!.hasPrefix("unavailable: "), "\(label): \(row["status"]!)")
            }
        }
        #expect(TestSupport.entries(in: scratch).sorted() == ["r.csv", "r.metadata.json"], "\(TestSupport.entries(in: scratch))")
    }

    private var machineIsX86_64: Bool {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } == "x86_64"
    }
}
