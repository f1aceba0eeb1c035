import Foundation
import Glibc
@testable import IPCBench
import Testing

/// Issue 19: how workers wait is an axis of its own.
@Suite("Wait strategies")
struct WaitStrategyTests {
    static let descriptorMechanisms = ["pipe", "fifo", "unix-stream", "tcp", "unix-dgram", "unix-seqpacket", "posix-mq", "vmsplice", "cma", "memfd", "signal"]
    /// Mechanisms whose descriptors raise no SIGIO (the signal's signalfd; datagram queues that drain).
    static let withoutSigio = ["unix-dgram", "unix-seqpacket", "signal"]
    static let nonBlocking: [WaitStrategy] = [.poll, .epoll, .sigio, .spinThenBlock, .timed]

    @Test("Every descriptor mechanism moves 10,000 verified messages per cell under every strategy, in both modes", arguments: descriptorMechanisms)
    func everyStrategyMovesVerifiedMessages(mechanism: String) throws {
        if let reason = MechanismRegistry.mechanism(id: mechanism)!.unavailableReason() { try Test.cancel("\(mechanism): \(reason)") }
        let waits = Self.nonBlocking.filter { !Self.withoutSigio.contains(mechanism) || $0 != .sigio }
        // A signal carries only the 16-byte header.
        let outcomes = TestSupport.run([mechanism], sizes: [mechanism == "signal" ? 16 : 64], messages: 10_000, waits: waits)
        #expect(outcomes.count == waits.count * Mode.allCases.count)
        for outcome in outcomes {
            #expect(outcome.status.isOK, "\(mechanism) \(outcome.cell.wait) \(outcome.cell.mode): \(outcome.status.text)")
            #expect(outcome.messages == 10_000 && outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0,
                    "\(mechanism) \(outcome.cell.wait) \(outcome.cell.mode): \(outcome.messages) messages, \(outcome.lost) lost")
        }
    }

    /// The rings' notifications that take other strategies than block, and how many of the non-blocking ones.
    static let ringNotifications = ["in-place/semaphore": 3, "copy/semaphore": 3, "in-place/sysv-sem": 3, "in-place/eventfd": 4]

    @Test("The rings' semaphore and eventfd notifications move 10,000 verified messages under each strategy they support, in both modes",
          arguments: ringNotifications.keys.sorted())
    func ringNotificationStrategies(variant: String) throws {
        let waits = Self.nonBlocking.filter { MechanismRegistry.mechanism(id: "shm-posix")!.waitStrategies(for: variant).contains($0) }
        #expect(waits.count == Self.ringNotifications[variant], "\(variant): \(waits)")
        let outcomes = TestSupport.run(["shm-posix"], sizes: [64], messages: 10_000, waits: Self.nonBlocking, variants: [variant])
        #expect(outcomes.count == Self.nonBlocking.count * Mode.allCases.count)
        for outcome in outcomes {
            let label = "\(variant) \(outcome.cell.wait) \(outcome.cell.mode)"
            if waits.contains(outcome.cell.wait) {
                #expect(outcome.status.isOK, "\(label): \(outcome.status.text)")
                #expect(outcome.messages == 10_000 && outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0,
                        "\(label): \(outcome.messages) messages, \(outcome.lost) lost")
            } else {
                let reason = variant.hasSuffix("eventfd") ? "an eventfd raises no SIGIO" : "a semaphore is not a file descriptor"
                #expect(outcome.status.text.hasPrefix("unavailable: \(reason)"), "\(label): \(outcome.status.text)")
            }
        }
    }

    @Test("poll never sleeps where block does: voluntary context switches per round trip, cross-CPU",
          arguments: ["pipe", "signal", "posix-mq", "shm-posix in-place/eventfd", "shm-sysv in-place/sysv-sem", "shm-posix in-place/semaphore"])
    func pollDoesNotSleep(cell: String) throws {
        guard Affinity.allowedCPUs().count >= 2 else { try Test.cancel("needs two CPUs") }
        let words = cell.split(separator: " ").map(String.init)
        let outcomes = TestSupport.run(
            [words[0]], modes: [.latency], sizes: [16], messages: 10_000, waits: [.block, .poll], variants: words.count > 1 ? [words[1]] : nil)
        let switches = outcomes.map { outcome in
            Double(outcome.producerUsage.voluntarySwitches + outcome.consumerUsage.voluntarySwitches) / Double(max(outcome.messages, 1))
        }
        try #require(outcomes.count == 2 && outcomes.allSatisfy { $0.status.isOK })
        // Blocking, each side sleeps while the other answers (about 2 per round trip); polling, neither does.
        #expect(switches[0] > 0.3, "block: \(switches[0]) voluntary switches per round trip")
        #expect(switches[1] < 0.05, "poll: \(switches[1]) voluntary switches per round trip; the strategy was not applied")
    }

    @Test("Each strategy sets the descriptors up as it should, and epoll and timed wait for data")
    func waiterSetsUpDescriptors() throws {
        for strategy in WaitStrategy.allCases {
            var fds: [Int32] = [-1, -1]
            try #require(pipe(&fds) == 0)
            defer { close(fds[0]); close(fds[1]) }
            var options = EndpointOptions(mode: .latency, messageBytes: 16, variant: "", wait: strategy)
            options.waitTimeoutSeconds = 0.2
            let waiter = try ReadinessWaiter(options: options, readDescriptor: fds[0], writeDescriptor: fds[1])
            defer { waiter.close() }
            for fd in fds {
                #expect((fcntl(fd, F_GETFL) & O_NONBLOCK != 0) == ![.block, .uring, .uringSQPoll].contains(strategy), "\(strategy): O_NONBLOCK on \(fd)")
            }
            if strategy == .sigio {
                #expect(fcntl(fds[0], F_GETFL) & O_ASYNC != 0, "sigio: O_ASYNC")
            }
            guard [.epoll, .sigio, .timed, .spinThenBlock].contains(strategy) else { continue }
            // Data arriving later ends the wait.
            let writer = fds[1]
            Thread.detachNewThread {
                usleep(50_000)
                _ = write(writer, "x", 1)
            }
            try waiter.waitReadable(fds[0])
            var byte: UInt8 = 0
            #expect(read(fds[0], &byte, 1) == 1, "\(strategy): woke with nothing to read")
            if strategy == .timed {
                // Nothing arriving ends it with a timeout error naming the bound.
                #expect(throws: IPCError.self) { try waiter.waitReadable(fds[0]) } // the bound, 0.2 s
            }
        }
    }

    @Test("System V queues: poll and spin-then-block (IPC_NOWAIT) move 10,000 verified messages; epoll and timed are unavailable, saying why")
    func sysVQueueStrategies() {
        let outcomes = TestSupport.run(["sysv-msg"], sizes: [64], messages: 10_000, waits: [.poll, .spinThenBlock, .epoll, .sigio, .timed])
        #expect(outcomes.count == 5 * Mode.allCases.map { MechanismRegistry.mechanism(id: "sysv-msg")!.variants(for: $0).count }.reduce(0, +))
        for outcome in outcomes {
            switch outcome.cell.wait {
            case .epoll, .sigio: #expect(outcome.status.text.contains("unavailable: System V queues are not file descriptors"), "\(outcome.status.text)")
            case .timed: #expect(outcome.status.text.contains("unavailable: msgsnd and msgrcv have no timeout"), "\(outcome.status.text)")
            default: #expect(outcome.status.isOK && outcome.messages == 10_000, "\(outcome.cell.wait) \(outcome.cell.mode): \(outcome.status.text)")
            }
        }
    }

    @Test("A mechanism without a strategy gives unavailable rows saying why")
    func unsupportedStrategyIsUnavailable() {
        let outcomes = TestSupport.run(
            ["shm-posix"], modes: [.latency], sizes: [16], messages: 100, waits: [.block, .poll], variants: ["in-place/futex", "in-place/spin"])
        #expect(outcomes.count == 4)
        for outcome in outcomes {
            let text = outcome.status.text
            switch (outcome.cell.variant, outcome.cell.wait) {
            case (_, .block): #expect(outcome.status.isOK, "\(outcome.cell.variant): \(text)")
            case ("in-place/futex", _): #expect(text.hasPrefix("unavailable: the futex variant only sleeps in FUTEX_WAIT"), "\(text)")
            default: #expect(text.hasPrefix("unavailable: the spin variant is itself polling"), "\(text)")
            }
        }
    }

    @Test("A peer that stops answering fails a timed cell with the wait's timeout, long before the cell timeout")
    func stalledPeerUnderTimedWait() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "pipe,unix-stream,signal,shm-posix,shm-sysv", "--variants", "write/read,sigqueue/sigwaitinfo (8-byte value),in-place/semaphore,in-place/sysv-sem",
             "--wait", "timed", "--wait-timeout", "0.5", "--inject-fault", "stall", "--mode", "latency",
             "--sizes", "16", "--placements", "cross-cpu", "--repetitions", "1", "--duration", "30", "--cell-timeout", "60", "--quiet",
             "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch])
        #expect(result.status == 1, "\(result.stderr)")
        let rows = try TestSupport.readCSV(scratch + "/r.csv")
        #expect(rows.count == 7)
        for row in rows {
            let status = row["status"] ?? ""
            #expect(row["wait"] == "timed")
            #expect(status.hasPrefix("failed: ") && status.contains("no message within 0.5 s (--wait timed"), "\(status)")
        }
        #expect(TestSupport.entries(in: scratch).sorted() == ["r.csv", "r.metadata.json"], "left behind: \(TestSupport.entries(in: scratch))")
    }

    @Test("--wait is checked: an unknown strategy or an out-of-range bound exits 2 naming what is allowed")
    func badWaitOptions() throws {
        for (arguments, expected) in [
            (["--wait", "busy"], "allowed: block, poll, epoll, sigio, spin-then-block, timed"),
            (["--wait", "timed", "--wait-timeout", "0"], "--wait-timeout 0.0 s is out of range; allowed: 0.001 to 3600.0 s"),
            (["--wait", "spin-then-block", "--spin-then-block", "1e9"], "--spin-then-block 1000000000.0 µs is out of range"),
        ] {
            let result = try TestSupport.runCLI(["run", "--mechanisms", "pipe", "--out", "/nonexistent/r.csv"] + arguments)
            #expect(result.status == 2 && result.stderr.contains(expected), "\(arguments): \(result.stderr)")
        }
    }
}
