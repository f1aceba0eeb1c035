import Foundation
import Glibc
@testable import IPCBench
import Testing

/// `--pairs`: where several pairs go on a machine, how their figures add up, and real pairs at once.
@Suite("Many pairs at once")
struct ScaleTests {
    static func layout(_ pairs: Int, _ placement: Placement, _ topology: Topology?, allowed: [Int]? = nil) -> (String, PairLayout.Sharing) {
        let layout = PairLayout.spread(pairs, around: placement, topology: topology, allowed: allowed ?? topology?.onlineCPUs ?? [])
        #expect(layout.pairs.count == pairs)
        return (layout.text, layout.sharing)
    }

    static let cross = Placement(producerCPU: 0, consumerCPU: 1)
    static let same = Placement(producerCPU: 0, consumerCPU: 0)

    @Test("This machine's copy (2 CPUs): two cross-CPU pairs share both CPUs; two same-CPU pairs take one each")
    func twoCPUs() throws {
        let topology = try TopologyTests.fixture("this-machine")
        #expect(Self.layout(1, Self.cross, topology) == ("0>1", .none))
        #expect(Self.layout(2, Self.cross, topology) == ("0>1 1>0", .cpu))
        #expect(Self.layout(4, Self.cross, topology) == ("0>1 1>0 0>1 1>0", .cpu))
        #expect(Self.layout(2, Self.same, topology) == ("0>0 1>1", .none))
        #expect(Self.layout(3, Self.same, topology) == ("0>0 1>1 0>0", .cpu))
        let unpinned = PairLayout.spread(4, around: Placement(producerCPU: nil, consumerCPU: nil), topology: topology, allowed: [0, 1])
        #expect(unpinned.text == "" && unpinned.sharing == .unpinned && unpinned.pairs.count == 4)
    }

    @Test("Two sockets with SMT: pairs alternate sockets on free cores, then take SMT siblings, then share CPUs with roles swapped")
    func twoSocketsWithSMT() throws {
        let topology = try TopologyTests.fixture("two-socket-smt")
        #expect(Self.layout(4, Self.cross, topology) == ("0>1 4>5 2>3 6>7", .none))
        #expect(Self.layout(5, Self.cross, topology) == ("0>1 4>5 2>3 6>7 8>9", .smt))
        #expect(Self.layout(8, Self.cross, topology).1 == .smt)
        #expect(Self.layout(9, Self.cross, topology) == ("0>1 4>5 2>3 6>7 8>9 12>13 10>11 14>15 1>0", .cpu))
        // Same-CPU pairs: one core each, alternating sockets, then siblings.
        #expect(Self.layout(8, Self.same, topology) == ("0>0 4>4 1>1 5>5 2>2 6>6 3>3 7>7", .none))
        #expect(Self.layout(9, Self.same, topology) == ("0>0 4>4 1>1 5>5 2>2 6>6 3>3 7>7 8>8", .smt))
        // Socket 1 only, and a pair 0 elsewhere than CPUs 0 and 1.
        #expect(Self.layout(3, Placement(producerCPU: 4, consumerCPU: 5), topology, allowed: [4, 5, 6, 7, 12, 13, 14, 15])
                == ("4>5 6>7 12>13", .smt))
    }

    @Test("One socket with four L3 groups: each pair in the emptiest L3 group, on two of its cores")
    func manyL3Groups() throws {
        let topology = try TopologyTests.fixture("one-socket-multi-l3")
        #expect(Self.layout(4, Self.cross, topology) == ("0>1 4>5 8>9 12>13", .none))
        #expect(Self.layout(8, Self.cross, topology) == ("0>1 4>5 8>9 12>13 2>3 6>7 10>11 14>15", .none))
        #expect(Self.layout(9, Self.cross, topology).1 == .cpu)
        // Three CPUs: the odd one is used before any CPU is shared twice.
        #expect(Self.layout(2, Self.cross, topology, allowed: [0, 1, 5]) == ("0>1 5>0", .cpu))
    }

    @Test("Without topology (or CPUs it does not describe) each CPU is its own core")
    func noTopology() throws {
        #expect(Self.layout(2, Self.cross, nil, allowed: [0, 1, 2, 3]) == ("0>1 2>3", .none))
        let minimal = try TopologyTests.fixture("minimal")
        #expect(Self.layout(3, Self.cross, minimal) == ("0>1 2>3 1>0", .cpu))
    }

    @Test("A pair shares a CPU when another pair's worker is on one of its CPUs, or when it is a same-CPU pair")
    func sharesCPU() {
        let layout = PairLayout.spread(3, around: Self.cross, topology: nil, allowed: [0, 1, 2, 3])
        #expect(layout.text == "0>1 2>3 1>0")
        #expect(layout.sharesCPU(pair: 0) && !layout.sharesCPU(pair: 1) && layout.sharesCPU(pair: 2))
        #expect(PairLayout(single: Self.same).sharesCPU(pair: 0))
    }

    static func result(_ role: Role, messages: UInt64, start: UInt64, end: UInt64, lastReceive: UInt64? = nil, trips: [UInt64] = []) -> WorkerResult {
        var result = WorkerResult(
            role: role, cpuBefore: 0, cpuAfter: 0, messages: messages, messagesSentByProducer: messages, payloadBytes: 0,
            lost: 0, reordered: 0, corrupt: 0, loopStartNanoseconds: start, loopEndNanoseconds: end, readChecksum: 0)
        result.lastReceiveNanoseconds = lastReceive
        if !trips.isEmpty {
            var histogram = LatencyHistogram()
            trips.forEach { histogram.record($0) }
            result.roundTrip = histogram
        }
        return result
    }

    static func pairsCell(_ mode: Mode, pairs: Int) -> Cell {
        var cell = scriptedCell(mode, size: 1000)
        cell.layout = PairLayout.spread(pairs, around: cross, topology: nil, allowed: [0, 1])
        return cell
    }

    @Test("Several pairs: bytes/s over the first producer's start to the last consumer's receive, every pair's messages; rates add up")
    func aggregateThroughput() {
        // Pair 0: 10 messages from 1,000 ns to its last receive at 2,000 ns; pair 1: 30 from 1,500 to 5,000.
        let pairs = [
            ProcessPair.Results(producer: Self.result(.producer, messages: 10, start: 1_000, end: 1_900),
                                consumer: Self.result(.consumer, messages: 10, start: 900, end: 2_000, lastReceive: 2_000)),
            ProcessPair.Results(producer: Self.result(.producer, messages: 30, start: 1_500, end: 4_900),
                                consumer: Self.result(.consumer, messages: 30, start: 1_400, end: 5_000, lastReceive: 5_000)),
        ]
        let outcome = CellOutcome.aggregate(Self.pairsCell(.throughput, pairs: 2), repetitions: [pairs])
        #expect(outcome.status == .ok)
        #expect(outcome.messages == 40)
        #expect(outcome.bytesPerSecond == 40 * 1000 / 4_000e-9)
        #expect(outcome.messagesPerSecond == 40 / 4_000e-9)
        // Per pair: 10,000 B / 1 µs = 1e10 B/s and 30,000 B / 3.5 µs ≈ 8.57e9 B/s.
        let perPair = [1e10, 30_000 / 3_500e-9]
        #expect(abs(outcome.pairSpreadPercent! - (perPair[0] - perPair[1]) / ((perPair[0] + perPair[1]) / 2) * 100) < 1e-9)
    }

    @Test("Several pairs: latency percentiles merge every pair's round trips; round trips per second over the span of all loops")
    func aggregateLatency() {
        let pairs = [
            ProcessPair.Results(producer: Self.result(.producer, messages: 3, start: 0, end: 1_000_000, trips: [1_000, 1_000, 1_000]),
                                consumer: Self.result(.consumer, messages: 3, start: 0, end: 1_000_000)),
            ProcessPair.Results(producer: Self.result(.producer, messages: 3, start: 0, end: 2_000_000, trips: [9_000, 9_000, 9_000]),
                                consumer: Self.result(.consumer, messages: 3, start: 0, end: 2_000_000)),
        ]
        let outcome = CellOutcome.aggregate(Self.pairsCell(.latency, pairs: 2), repetitions: [pairs])
        #expect(outcome.messages == 6)
        #expect(outcome.halfRoundTrip?.min == 500 && abs((outcome.halfRoundTrip?.max ?? 0) - 4_500) < 10)
        // 6 round trips over the span of both loops, 0 to 2 ms (not 3,000 + 1,500 per second: loops
        // that did not overlap must not count as side by side).
        #expect(outcome.messagesPerSecond == 3_000)
        #expect(outcome.pairSpreadPercent.map { abs($0 - 8_000.0 / 5_000 * 100) < 2 } == true, "\(String(describing: outcome.pairSpreadPercent))")
        #expect(CellOutcome.aggregate(scriptedCell(.latency, size: 1000), [pairs[0]]).pairSpreadPercent == nil)
    }

    @Test("A pair with errors, or with no timed message, is named in the failure")
    func pairNamed() {
        var reordering = Self.result(.consumer, messages: 10, start: 0, end: 2_000, lastReceive: 2_000)
        reordering.reordered = 1
        let good = ProcessPair.Results(producer: Self.result(.producer, messages: 10, start: 0, end: 1_000),
                                       consumer: Self.result(.consumer, messages: 10, start: 0, end: 2_000, lastReceive: 2_000))
        let bad = ProcessPair.Results(producer: Self.result(.producer, messages: 10, start: 0, end: 1_000), consumer: reordering)
        let outcome = CellOutcome.aggregate(Self.pairsCell(.throughput, pairs: 2), repetitions: [[good, bad]])
        #expect(outcome.status.text.hasSuffix("1 reordered, 0 corrupt messages (pair 1)"), "\(outcome.status.text)")
        let idle = ProcessPair.Results(producer: Self.result(.producer, messages: 0, start: 0, end: 1_000),
                                       consumer: Self.result(.consumer, messages: 0, start: 0, end: 2_000, lastReceive: 2_000))
        let starved = CellOutcome.aggregate(Self.pairsCell(.throughput, pairs: 2), repetitions: [[good, idle]])
        #expect(starved.status.text == "failed: pair 1 completed no timed messages", "\(starved.status.text)")
        // UDP: a pair all of whose datagrams were lost sent them all the same; that is loss, not a failure.
        var allLost = Self.result(.consumer, messages: 0, start: 0, end: 2_000, lastReceive: 2_000)
        allLost.messagesSentByProducer = 10
        allLost.lost = 10
        var lossy = Self.pairsCell(.throughput, pairs: 2)
        lossy.mechanism = UDPMechanism()
        let lost = CellOutcome.aggregate(lossy, repetitions: [[good, ProcessPair.Results(producer: Self.result(.producer, messages: 10, start: 0, end: 1_000), consumer: allLost)]])
        #expect(lost.status == .ok && lost.lost == 10, "\(lost.status.text)")
    }

    @Test("Unpinned pairs that outnumber the CPUs tell their spinning waiters to give the CPU up")
    func unpinnedSharing() {
        let unpinned = Placement(producerCPU: nil, consumerCPU: nil)
        #expect(PairLayout.spread(2, around: unpinned, topology: nil, allowed: [0, 1]).sharesCPU(pair: 0))
        #expect(!PairLayout.spread(2, around: unpinned, topology: nil, allowed: [0, 1, 2, 3]).sharesCPU(pair: 0))
    }

    @Test("A pair whose consumer misses messages fails the row and names the pair")
    func onePairShort() {
        var short = Self.result(.consumer, messages: 9, start: 0, end: 2_000, lastReceive: 2_000)
        short.messagesSentByProducer = 9
        let pairs = [
            ProcessPair.Results(producer: Self.result(.producer, messages: 10, start: 0, end: 1_000),
                                consumer: Self.result(.consumer, messages: 10, start: 0, end: 2_000, lastReceive: 2_000)),
            ProcessPair.Results(producer: Self.result(.producer, messages: 10, start: 0, end: 1_000), consumer: short),
        ]
        let outcome = CellOutcome.aggregate(Self.pairsCell(.throughput, pairs: 2), repetitions: [pairs])
        #expect(outcome.status.text.contains("(pair 1)"), "\(outcome.status.text)")
    }

    @Test("Pipe, UNIX stream and the in-place ring: 2 pairs at once, 10,000 verified messages per pair in both modes")
    func realPairs() {
        var configuration = RunConfiguration(
            mechanisms: ["pipe", "unix-stream", "shm-posix"].map { MechanismRegistry.mechanism(id: $0)! }, modes: Mode.allCases,
            variants: ["write/read", "in-place/semaphore"], sizes: [256], touch: .verify, placement: TestSupport.placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: 10_000, warmupMessages: 100, limits: TestSupport.limits)
        configuration.pairCounts = [2]
        configuration.allowedCPUs = Affinity.allowedCPUs()
        configuration.topology = try? Topology.read()
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        #expect(outcomes.count == 6)
        for outcome in outcomes {
            let name = "\(outcome.cell.mechanism.id) \(outcome.cell.mode)"
            #expect(outcome.status == .ok, "\(name): \(outcome.status.text)")
            #expect(outcome.cell.pairs == 2, "\(name)")
            #expect(outcome.messages == 20_000, "\(name): \(outcome.messages)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(name)")
            #expect(outcome.pairSpreadPercent != nil, "\(name)")
        }
    }

    @Test("A killed consumer of one of three pairs fails the row with its pair named; the next row runs; nothing is left")
    func killedPair() throws {
        let (result, rows, injected, scratch) = try TestSupport.runKillingOneWorker(
            ["--pairs", "3", "--placements", "cross-cpu", "--mechanisms", "unix-stream,pipe", "--sizes", "64", "--mode", "latency",
             "--duration", "3", "--repetitions", "1", "--cell-timeout", "30"], role: .consumer, count: 3)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        #expect(injected, "could not find three consumers")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(rows.count == 2)
        let failure = rows.first?["status"] ?? ""
        #expect(failure.hasPrefix("failed: ") && failure.contains("of pair") && failure.contains("SIGKILL"), "\(failure)")
        #expect(rows.last?["mechanism"] == "pipe" && rows.last?["status"] == "ok" && rows.last?["pairs"] == "3", "\(rows.last ?? [:])")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
    }

    @Test("The noise check counts CPU time of processes outside the run (a busy loop it has not reaped)")
    func othersCPU() throws {
        let busy = Process()
        busy.executableURL = URL(fileURLWithPath: "/bin/sh")
        busy.arguments = ["-c", "while :; do :; done"]
        try busy.run()
        defer {
            kill(busy.processIdentifier, SIGKILL)
            busy.waitUntilExit()
        }
        let begun = MachineLoad.begin()
        usleep(400_000)
        let load = MachineLoad(combining: [MachineLoad.observe(begun)])
        // One busy CPU out of the online ones, less the jiffy rounding.
        let expected = 100 / Double(SystemFacts.onlineCPUs.count)
        #expect((load.othersPercent ?? 0) > expected * 0.6, "\(String(describing: load.othersPercent)) % of \(expected)")
    }

    @Test("Too few descriptors for the workers is refused up front, naming the limit; a low soft limit is raised")
    func descriptorLimit() throws {
        let refused = try TestSupport.runCLI(["run", "--pairs", "64", "--mechanisms", "pipe", "--quick", "--out", "/nonexistent-dir/x.csv"], shell: "ulimit -n 100")
        #expect(refused.status == 2 && refused.stderr.contains("--pairs: 128 workers need about 800 open descriptors in this process, but the limit is 100"),
                "\(refused.status) \(refused.stderr)")
        let raised = try TestSupport.runCLI(["run", "--pairs", "64", "--mechanisms", "pipe", "--quick", "--out", "/nonexistent-dir/x.csv"], shell: "ulimit -Sn 100")
        #expect(raised.status == 2 && raised.stderr.contains("directory '/nonexistent-dir' does not exist"), "\(raised.status) \(raised.stderr)")
    }

    @Test("--pairs input is checked before any work: range, form, and the placements it can spread from")
    func badInput() throws {
        let cases: [([String], String)] = [
            (["--pairs", "0"], "--pairs: '0' is not a number of pairs"),
            (["--pairs", "65"], "from 1 to 64"),
            (["--pairs", "1,x"], "'x' is not a number of pairs"),
            (["--pairs", "2", "--placements", "smt-siblings"], "works with the placements cross-cpu, same-cpu, unpinned"),
            (["--pairs", "2", "--producer-cpu", "0"], "cannot be combined with --producer-cpu"),
            (["--pairs", "2", "--remote", "127.0.0.1:1"], "cannot be combined with --remote"),
            (["--pairs", "2", "--memory-node", "local"], "--memory-node local is resolved from one consumer's CPU"),
        ]
        for (arguments, message) in cases {
            let result = try TestSupport.runCLI(["run", "--mechanisms", "tcp", "--quick"] + arguments + ["--out", "/nonexistent-dir/x.csv"])
            #expect(result.status == 2 && result.stderr.contains(message), "\(arguments): \(result.status) \(result.stderr)")
        }
    }
}
