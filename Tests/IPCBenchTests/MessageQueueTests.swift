import Foundation
import Glibc
import IPCBench
import Testing

/// System V and POSIX message queues: every variant moves 10,000 verified messages per cell up to the
/// system's message limit; sizes over the limit are refused, never truncated; and every queue a cell
/// creates is gone afterwards, also when a worker was killed or the cell could not be set up.
@Suite("Message queues move real data, refuse oversized messages and leave no queue behind", .serialized)
struct MessageQueueTests {
    static let cases: [(mechanism: String, variant: String)] = [
        ("sysv-msg", SysVMessageQueueMechanism.twoQueues),
        ("sysv-msg", SysVMessageQueueMechanism.oneQueue),
        ("posix-mq", "mq_send/mq_receive"),
    ]

    static func limit(_ id: String) throws -> MessageLimit {
        try #require(MechanismRegistry.mechanism(id: id)?.messageLimit(), "\(id) reads no message limit on this system")
    }

    @Test("10,000 messages per cell up to the limit, every sequence and payload verified", arguments: MessageQueueTests.cases)
    func movesVerifiedMessages(mechanism: String, variant: String) throws {
        let largest = min(try Self.limit(mechanism).bytes, 65536)
        let sizes = [16, 1000, largest].filter { $0 <= largest }
        let configuration = RunConfiguration(
            mechanisms: [MechanismRegistry.mechanism(id: mechanism)!], modes: Mode.allCases, variants: [variant], sizes: sizes,
            touch: .verify, placement: TestSupport.placement, repetitions: 1, durationSeconds: 0, maximumMessages: 10_000,
            warmupMessages: 100, limits: TestSupport.limits)
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        #expect(outcomes.count == 2 * sizes.count)
        for outcome in outcomes {
            let label = "\(mechanism) \(outcome.cell.variant) \(outcome.cell.mode) \(outcome.cell.messageBytes)"
            #expect(outcome.cell.variant == variant, "\(label)")
            #expect(outcome.status == .ok, "\(label): \(outcome.status.text)")
            #expect(outcome.messages == 10_000, "\(label)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(label)")
            #expect(outcome.cell.copies == 2, "\(label)")
        }
    }

    @Test("A size over the limit is an unavailable cell naming the limit in a sweep", arguments: ["sysv-msg", "posix-mq"])
    func oversizedCellIsUnavailable(mechanism: String) throws {
        let limit = try Self.limit(mechanism)
        let outcomes = TestSupport.run([mechanism], modes: [.latency], sizes: [64, limit.bytes + 1], messages: 1_000)
        try #require(outcomes.count == 2)
        #expect(outcomes[0].status == .ok, "\(outcomes[0].status.text)")
        guard case let .unavailable(reason) = outcomes[1].status else {
            Issue.record("\(limit.bytes + 1) bytes over \(mechanism)'s limit gave \(outcomes[1].status.text)")
            return
        }
        #expect(reason.contains(String(limit.bytes)) && reason.contains(limit.source), "\(reason)")
        #expect(outcomes[1].messages == 0)
    }

    @Test("An explicit size over the limit exits 2 naming the limit", arguments: ["sysv-msg", "posix-mq"])
    func explicitOversizeIsRefused(mechanism: String) throws {
        let limit = try Self.limit(mechanism)
        let size = limit.bytes < 65536 ? "64K" : String(limit.bytes + 1)
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try TestSupport.runCLI(["run", "--sizes", size, "--mechanisms", mechanism, "--out", directory + "/r.csv", "--quiet"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains(String(limit.bytes)) && result.stderr.contains(limit.source), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/r.csv"))
    }

    @Test("A consumer killed mid-run leaves no System V queue behind and fails its row", arguments: SysVMessageQueueMechanism().variants(for: .latency) + SysVMessageQueueMechanism().optionalVariants(for: .latency))
    func killedWorkerLeavesNoSysVQueue(variant: String) throws {
        var queues: Set<Int32> = []
        let expected = variant == SysVMessageQueueMechanism.twoQueues ? 2 : 1
        let (result, rows) = try Self.runAndKillConsumer(mechanism: "sysv-msg", variant: variant) { _, workers in
            // The queues this pair uses are the ones its workers last sent to or received from; wait
            // until both directions have been used (a slow start-up may not have got that far yet).
            _ = TestSupport.waitFor(seconds: 10) {
                queues = Self.sysVQueues(usedBy: workers)
                return queues.count >= expected
            }
            #expect(!queues.isEmpty && queues.allSatisfy(SysVMessageQueueMechanism.queueExists(id:)), "queues seen: \(queues)")
        }
        #expect(queues.count == expected)
        for id in queues {
            #expect(!SysVMessageQueueMechanism.queueExists(id: id), "queue \(id) is still there after the run")
        }
        Self.expectKilledRow(result, rows)
    }

    @Test("A consumer killed mid-run leaves no POSIX queue behind and fails its row")
    func killedWorkerLeavesNoPOSIXQueue() throws {
        var names: [String] = []
        var cliProcess: pid_t = 0
        let (result, rows) = try Self.runAndKillConsumer(mechanism: "posix-mq", variant: nil) { parent, workers in
            cliProcess = parent
            // The names are random: read them from the queues the workers hold open.
            let found = TestSupport.waitFor(seconds: 10) {
                names = Self.queuesOpen(by: workers, prefix: "/ipcbench-\(parent)-")
                return names.count == 2 && names.allSatisfy(POSIXMessageQueueMechanism.queueExists(named:))
            }
            #expect(found, "queues \(names) not found while running")
        }
        for name in names {
            #expect(!POSIXMessageQueueMechanism.queueExists(named: name), "\(name) is still there after the run")
        }
        Self.expectNoMountedLeftovers(prefix: "ipcbench-\(cliProcess)-")
        Self.expectKilledRow(result, rows)
    }

    @Test("An exhausted RLIMIT_MSGQUEUE fails the cell with the reason, and leaves no queue")
    func messageQueueRlimitIsAClearFailure() throws {
        // Even one message of this size does not fit in a 1000-byte limit.
        let size = min(try Self.limit("posix-mq").bytes, 8192)
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = directory + "/r.csv"
        // The shell lowers its own limit and execs the tool, which keeps the pid (and so the queue names).
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/bash")
        shell.arguments = [
            "-c", "ulimit -q 1000 && exec \"$0\" \"$@\"", TestSupport.binary, "run", "--placements", "cross-cpu", "--mechanisms", "posix-mq", "--sizes", String(size),
            "--modes", "latency", "--repetitions", "1", "--messages", "100", "--out", csv, "--quiet",
        ]
        shell.standardOutput = FileHandle.nullDevice
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let parent = shell.processIdentifier
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 1)
        let rows = try TestSupport.readCSV(csv)
        let status = rows.first?["status"] ?? ""
        #expect(rows.count == 1 && status.hasPrefix("failed: ") && status.contains("RLIMIT_MSGQUEUE") && status.contains("1000 bytes"), "\(status)")
        // The name the refusal reports (`mq_open /ipcbench-<pid>-<random>-to-consumer (…)`) is not left behind.
        let name = try #require(status.firstMatch(of: #/mq_open (/ipcbench-\d+-[0-9a-f]+-to-consumer) /#).map { String($0.1) }, "\(status)")
        #expect(name.hasPrefix("/ipcbench-\(parent)-"))
        #expect(!POSIXMessageQueueMechanism.queueExists(named: name))
    }

    // MARK: - Helpers

    /// Runs one latency cell of `mechanism` through the CLI for up to 60 s, calls `whileRunning` with
    /// the CLI's pid and both worker pids once the timed loop runs, then SIGKILLs the consumer.
    static func runAndKillConsumer(
        mechanism: String, variant: String?, whileRunning: @escaping (pid_t, [pid_t]) -> Void
    ) throws -> (TestSupport.CommandResult, [[String: String]]) {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = directory + "/r.csv"
        var arguments = [
            // A long loop, so that the kill lands in it however slowly the workers start here (the
            // consumer is killed after well under a second of it, so the test does not take longer).
            "run", "--placements", "cross-cpu", "--mechanisms", mechanism, "--modes", "latency", "--sizes", "1000", "--duration", "60", "--repetitions", "1",
            "--out", csv, "--quiet",
        ]
        if let variant { arguments += ["--variants", variant] }
        var killed = false
        let result = try TestSupport.runCLI(arguments, environment: ["TMPDIR": directory]) { parent in
            var workers: [(pid: pid_t, commandLine: String)] = []
            guard TestSupport.waitFor(seconds: 10, {
                workers = TestSupport.children(of: parent)
                return workers.count == 2
            }) else { return }
            usleep(500_000)  // into the timed loop: the set-up and warm-up take well under this
            // Read again: a worker caught between posix_spawn and exec still shows the parent's command line.
            workers = TestSupport.children(of: parent)
            whileRunning(parent, workers.map(\.pid))
            guard let consumer = workers.first(where: { $0.commandLine.contains(#""role":"consumer""#) }) else { return }
            killed = kill(consumer.pid, SIGKILL) == 0
        }
        #expect(killed, "no consumer worker was found to kill")
        return (result, try TestSupport.readCSV(csv))
    }

    static func expectKilledRow(_ result: TestSupport.CommandResult, _ rows: [[String: String]]) {
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        let status = rows.first?["status"] ?? ""
        #expect(rows.count == 1 && status.hasPrefix("failed: ") && status.contains("consumer was killed by SIGKILL"), "\(status)")
    }

    /// Ids from /proc/sysvipc/msg whose last sender or receiver is one of `pids`.
    static func sysVQueues(usedBy pids: [pid_t]) -> Set<Int32> {
        guard let text = SystemFacts.readWhole("/proc/sysvipc/msg") else { return [] }
        var ids: Set<Int32> = []
        for line in text.split(separator: "\n").dropFirst() {
            // key msqid perms cbytes qnum lspid lrpid …
            let fields = line.split(separator: " ")
            guard fields.count > 6, let id = Int32(fields[1]), let sender = pid_t(fields[5]), let receiver = pid_t(fields[6]) else { continue }
            if pids.contains(sender) || pids.contains(receiver) { ids.insert(id) }
        }
        return ids
    }

    /// Where an mqueue file system is mounted (it need not be), no queue named with `prefix` may remain.
    /// The POSIX message queues (their /proc/PID/fd links read `/<name>`) the processes hold open.
    static func queuesOpen(by processes: [pid_t], prefix: String) -> [String] {
        var names = Set<String>()
        for pid in processes {
            for fd in TestSupport.entries(in: "/proc/\(pid)/fd") {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), target.hasPrefix(prefix) {
                    names.insert(target)
                }
            }
        }
        return names.sorted()
    }

    static func expectNoMountedLeftovers(prefix: String) {
        guard let mounts = SystemFacts.readWhole("/proc/self/mounts") else {
            Issue.record("cannot read /proc/self/mounts to look for leftover queues")
            return
        }
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[2] == "mqueue" else { continue }
            let ours = TestSupport.entries(in: String(fields[1])).filter { $0.hasPrefix(prefix) }
            #expect(ours.isEmpty, "left in \(fields[1]): \(ours)")
        }
    }
}
