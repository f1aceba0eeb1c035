import Foundation
import Glibc
@testable import IPCBench
import Testing

/// `--readers`: one producer, every message to every reader, each reader checking its own sequence.
@Suite("One producer to many readers")
struct FanOutTests {
    @Test("The producer keeps its CPU; reader 0 the consumer's, the others spread over the CPUs left")
    func layouts() throws {
        let here = try TopologyTests.fixture("this-machine")
        let layout = PairLayout.fanOut(3, around: Placement(producerCPU: 0, consumerCPU: 1), topology: here, allowed: [0, 1])
        #expect(layout.text == "0>1 0>1 0>1" && layout.sharing == .cpu, "\(layout.text)")
        let ccx = try TopologyTests.fixture("one-socket-multi-l3")
        #expect(PairLayout.fanOut(3, around: Placement(producerCPU: 0, consumerCPU: 1), topology: ccx, allowed: ccx.onlineCPUs).text == "0>1 0>4 0>8")
    }

    static func run(_ mechanisms: [String], variants: [String], readers: Int, modes: [Mode] = [.throughput]) -> [CellOutcome] {
        var configuration = RunConfiguration(
            mechanisms: mechanisms.map { MechanismRegistry.mechanism(id: $0)! }, modes: modes, variants: variants, sizes: [256], touch: .verify,
            placement: TestSupport.placement, repetitions: 1, durationSeconds: 0, maximumMessages: 10_000, warmupMessages: 100,
            limits: TestSupport.limits)
        configuration.readerCounts = [readers]
        configuration.allowedCPUs = Affinity.allowedCPUs()
        configuration.topology = try? Topology.read()
        return SuiteRunner.run(configuration) { _, _, _ in }
    }

    @Test("The broadcast ring (read in place) and UNIX stream (sent to each): 3 readers, 10,000 verified messages each")
    func realReaders() {
        let outcomes = Self.run(["unix-stream", "shm-posix"], variants: ["write/read", "in-place/spin"], readers: 3)
        #expect(outcomes.count == 2)
        for outcome in outcomes {
            let name = outcome.cell.mechanism.id
            #expect(outcome.status == .ok, "\(name): \(outcome.status.text)")
            #expect(outcome.cell.readers == 3 && outcome.cell.pairs == 1, "\(name)")
            #expect(outcome.messages == 30_000, "\(name): \(outcome.messages)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(name)")
        }
        #expect(outcomes.first { $0.cell.mechanism.id == "shm-posix" }?.cell.copies == 0)
    }

    @Test("Ping-pong, other variants and mechanisms without a one-to-many shape give unavailable rows with the reason")
    func unavailable() {
        var configuration = RunConfiguration(
            mechanisms: [PipeMechanism(), POSIXSharedMemoryMechanism()], modes: [.latency, .throughput], variants: ["write/read", "copy/semaphore", "in-place/spin"],
            sizes: [64], placement: TestSupport.placement, repetitions: 1, durationSeconds: 0, maximumMessages: 10, limits: TestSupport.limits)
        configuration.readerCounts = [2]
        let reasons = configuration.cells.map { "\($0.mechanism.id) \($0.variant) \($0.mode): " + (SuiteRunner.unavailableReason($0) ?? "runs") }
        #expect(reasons.contains("pipe write/read throughput: pipe has no one-to-many shape for --readers (yet); these do: unix-stream, shm-posix"), "\(reasons)")
        #expect(reasons.contains { $0.hasPrefix("shm-posix in-place/spin latency: --readers measures streaming") }, "\(reasons)")
        #expect(reasons.contains("shm-posix copy/semaphore throughput: shm-posix copy/semaphore has no one-to-many shape; --readers runs in-place/spin"), "\(reasons)")
        #expect(reasons.contains("shm-posix in-place/spin throughput: runs"), "\(reasons)")
    }

    @Test("A killed reader fails the row (the producer cannot pass it) with a timeout; the next row runs; nothing is left")
    func killedReader() throws {
        let (result, rows, injected, scratch) = try TestSupport.runKillingOneWorker(
            ["--readers", "3", "--placements", "cross-cpu", "--mechanisms", "shm-posix,unix-stream", "--variants", "in-place/spin,write/read",
             "--sizes", "64", "--mode", "throughput", "--duration", "3", "--repetitions", "1", "--cell-timeout", "2"], role: .consumer, count: 3)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        #expect(injected, "could not find three readers")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(rows.count == 2)
        let failure = rows.first?["status"] ?? ""
        #expect(failure.hasPrefix("failed: ") && failure.contains("reader 1") && failure.contains("SIGKILL"), "\(failure)")
        #expect(rows.last?["mechanism"] == "unix-stream" && rows.last?["status"] == "ok" && rows.last?["readers"] == "3", "\(rows.last ?? [:])")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
        // Another test's run may hold a run lock meanwhile; no IPC object or name may be left.
        let left = Leftovers.find().found.filter { !"\($0)".hasPrefix("run lock") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("--readers is not combined with --pairs or --clients")
    func badInput() throws {
        let result = try TestSupport.runCLI(["run", "--mechanisms", "unix-stream", "--quick", "--readers", "2", "--clients", "2", "--out", "/nonexistent-dir/x.csv"])
        #expect(result.status == 2 && result.stderr.contains("--clients and --readers above 1 cannot be combined"), "\(result.stderr)")
    }
}
