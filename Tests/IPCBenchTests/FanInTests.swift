import Foundation
import Glibc
@testable import IPCBench
import Testing

/// `--clients`: one server, several producers, each client's messages checked on their own.
@Suite("Many clients to one server")
struct FanInTests {
    static let cross = Placement(producerCPU: 0, consumerCPU: 1)

    static func layout(_ clients: Int, _ placement: Placement, _ topology: Topology?, allowed: [Int]? = nil) -> (String, PairLayout.Sharing) {
        let layout = PairLayout.fanIn(clients, around: placement, topology: topology, allowed: allowed ?? topology?.onlineCPUs ?? [])
        #expect(layout.pairs.count == clients)
        return (layout.text, layout.sharing)
    }

    @Test("The server keeps the consumer's CPU; clients start at the producer's and spread over the CPUs left")
    func layouts() throws {
        let here = try TopologyTests.fixture("this-machine")
        #expect(Self.layout(2, Self.cross, here) == ("0>1 0>1", .cpu))
        #expect(Self.layout(2, Placement(producerCPU: 0, consumerCPU: 0), here) == ("0>0 0>0", .cpu))
        // Two sockets: socket 1 is empty, so clients go there first, then back to socket 0.
        let sockets = try TopologyTests.fixture("two-socket-smt")
        #expect(Self.layout(4, Self.cross, sockets) == ("0>1 4>1 5>1 2>1", .none))
        let ccx = try TopologyTests.fixture("one-socket-multi-l3")
        #expect(Self.layout(3, Self.cross, ccx) == ("0>1 4>1 8>1", .none))
    }

    @Test("A client yields its CPU at once only when it shares it with the server or another client")
    func clientsSharingCPUs() throws {
        // Own CPUs each: the server's CPU, common to every "pair", is not sharing.
        let ccxTopology = try TopologyTests.fixture("one-socket-multi-l3")
        let ccx = PairLayout.fanIn(3, around: Self.cross, topology: ccxTopology, allowed: ccxTopology.onlineCPUs)
        #expect(ccx.text == "0>1 4>1 8>1")
        #expect((0..<3).map(ccx.clientSharesCPU) == [false, false, false] && !ccx.serverSharesCPU)
        // Two CPUs: the clients share CPU 0; the server has CPU 1 to itself.
        let here = PairLayout.fanIn(2, around: Self.cross, topology: try TopologyTests.fixture("this-machine"), allowed: [0, 1])
        #expect(here.text == "0>1 0>1" && here.clientSharesCPU(0) && here.clientSharesCPU(1) && !here.serverSharesCPU)
        // One CPU: everyone shares it.
        let one = PairLayout.fanIn(2, around: Placement(producerCPU: 0, consumerCPU: 0), topology: try TopologyTests.fixture("this-machine"), allowed: [0, 1])
        #expect(one.clientSharesCPU(0) && one.serverSharesCPU)
    }

    @Test("The server's result is shared out per client: its own messages and end-marker count; totals on client 0")
    func split() {
        var server = ScaleTests.result(.consumer, messages: 8, start: 0, end: 0, lastReceive: 9_000)
        server.messagesPerClient = [3, 5]
        server.sentByClient = [3, 5]
        server.payloadBytes = 8 * 64
        server.lost = 2
        let clients = [ScaleTests.result(.producer, messages: 3, start: 1_000, end: 2_000), ScaleTests.result(.producer, messages: 5, start: 1_500, end: 3_000)]
        let shares = ProcessPair.split(server: server, clients: clients)
        #expect(shares.map(\.consumer.messages) == [3, 5])
        #expect(shares.map(\.consumer.messagesSentByProducer) == [3, 5])
        #expect(shares.map(\.consumer.payloadBytes) == [3 * 64, 5 * 64])
        #expect(shares.map(\.consumer.lost) == [2, 0])
        var cell = scriptedCell(.throughput, size: 64)
        cell.clients = 2
        cell.layout = PairLayout.fanIn(2, around: Self.cross, topology: nil, allowed: [0, 1])
        let outcome = CellOutcome.aggregate(cell, repetitions: [shares])
        #expect(outcome.messages == 8 && outcome.lost == 2)
        // Every client's messages over the first client's start to the server's last receive.
        #expect(outcome.bytesPerSecond == 8 * 64 / 8_000e-9)
    }

    static func run(
        _ mechanisms: [String], clients: Int, modes: [Mode] = Mode.allCases, variants: [String]? = nil, fault: InjectedFault? = nil
    ) -> [CellOutcome] {
        var configuration = RunConfiguration(
            mechanisms: mechanisms.map { MechanismRegistry.mechanism(id: $0)! }, modes: modes, variants: variants, sizes: [256], touch: .verify,
            placement: TestSupport.placement, repetitions: 1, durationSeconds: 0, maximumMessages: 10_000, warmupMessages: 100,
            limits: TestSupport.limits, fault: fault)
        configuration.clientCounts = [clients]
        configuration.allowedCPUs = Affinity.allowedCPUs()
        configuration.topology = try? Topology.read()
        return SuiteRunner.run(configuration) { _, _, _ in }
    }

    @Test("FIFO, UNIX stream, TCP, POSIX mq and UDP: 3 clients at once, 10,000 verified messages per client in both modes")
    func realClients() {
        let outcomes = Self.run(["fifo", "unix-stream", "tcp", "posix-mq", "udp"], clients: 3)
        #expect(outcomes.count == 10)
        for outcome in outcomes {
            let name = "\(outcome.cell.mechanism.id) \(outcome.cell.mode)"
            #expect(outcome.status == .ok, "\(name): \(outcome.status.text)")
            #expect(outcome.cell.clients == 3 && outcome.cell.pairs == 1, "\(name)")
            // UDP streaming may lose datagrams (counted as lost); everything else arrives.
            let udpStream = outcome.cell.mechanism.id == "udp" && outcome.cell.mode == .throughput
            #expect(outcome.messages + (udpStream ? outcome.lost : 0) == 30_000, "\(name): \(outcome.messages) + \(outcome.lost) lost")
            // UDP on loopback may lose datagrams only when a buffer overflows; ping-pong has one in flight per client.
            #expect((outcome.cell.mechanism.id == "udp" && outcome.cell.mode == .throughput || outcome.lost == 0)
                    && outcome.reordered == 0 && outcome.corrupt == 0, "\(name): \(outcome.lost) lost")
        }
    }

    @Test("shm-posix: a ring per client polled by the server, 3 clients, 10,000 verified messages each, in place and copied, both modes")
    func ringClients() {
        let outcomes = Self.run(["shm-posix"], clients: 3, variants: Self.spinningRings)
        #expect(outcomes.count == 4)
        for outcome in outcomes {
            let name = "\(outcome.cell.variant) \(outcome.cell.mode)"
            #expect(outcome.status == .ok && outcome.cell.clients == 3, "\(name): \(outcome.status.text)")
            #expect(outcome.messages == 30_000 && outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0,
                    "\(name): \(outcome.messages) messages, \(outcome.lost) lost, \(outcome.corrupt) corrupt")
        }
        #expect(Self.objects(inDevShmOf: getpid()).isEmpty)
    }

    static let spinningRings = ["in-place/spin", "copy/spin"]

    /// This process's POSIX shared memory objects (OwnedNames.posixName puts the pid in each name).
    static func objects(inDevShmOf pid: pid_t) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { OwnedNames.ownerPID(ofName: $0) == pid }
    }

    @Test("UDP: a client that loses datagrams re-sends its pings; the server answers again and counts each as lost")
    func udpLoss() {
        let outcomes = Self.run(["udp"], clients: 3, modes: [.latency], fault: .drop)
        let outcome = outcomes[0]
        #expect(outcome.status == .ok, "\(outcome.status.text)")
        // Every ping was answered in the end; the lost ones show as retransmissions.
        #expect(outcome.messages == 30_000, "\(outcome.messages)")
        #expect(outcome.lost >= 10, "\(outcome.lost) lost")
    }

    @Test("Each client's sequence is checked on its own: one message dropped by one client is one lost message")
    func perClientSequence() {
        let outcomes = Self.run(["fifo", "unix-stream", "posix-mq"], clients: 3, modes: [.throughput], fault: .drop)
            + Self.run(["shm-posix"], clients: 3, modes: [.throughput], variants: ["in-place/spin"], fault: .drop)
        #expect(outcomes.count == 4)
        for outcome in outcomes {
            #expect(outcome.lost == 1 && outcome.reordered == 0, "\(outcome.cell.mechanism.id): \(outcome.lost) lost, \(outcome.reordered) reordered")
            #expect(outcome.status.text.contains("1 lost"), "\(outcome.status.text)")
        }
    }

    @Test("Mechanisms without a many-to-one shape, and waits other than block, give unavailable rows with the reason")
    func unavailable() {
        var configuration = RunConfiguration(
            mechanisms: [PipeMechanism(), UnixStreamMechanism()], modes: [.latency], sizes: [64], placement: TestSupport.placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: 10, limits: TestSupport.limits)
        configuration.clientCounts = [2]
        configuration.waits = [.block, .poll]
        let reasons = configuration.cells.map { SuiteRunner.unavailableReason($0) }
        #expect(reasons[0]?.contains("pipe has no many-to-one shape for --clients (yet); these do: fifo, unix-stream, tcp, posix-mq, udp, shm-posix") == true, "\(reasons)")
        #expect(reasons[2] == nil)
        #expect(reasons[3]?.contains("blocking waits only") == true, "\(reasons)")
        // A ring server polls its clients' rings: nothing to sleep on for several semaphores at once.
        let ring = POSIXSharedMemoryMechanism()
        #expect(ring.fanInUnavailableReason(variant: "in-place/semaphore", messageBytes: 64)?.contains("only the spin variants (copy/spin, in-place/spin)") == true)
        #expect(Self.spinningRings.allSatisfy { ring.fanInUnavailableReason(variant: $0, messageBytes: 64) == nil })
    }

    @Test("FIFO fan-in refuses messages above PIPE_BUF, which several writers could interleave, and takes PIPE_BUF itself")
    func fifoAtomicWrites() {
        var configuration = RunConfiguration(
            mechanisms: [FIFOMechanism()], modes: [.throughput], sizes: [Int(PIPE_BUF), Int(PIPE_BUF) + 1], placement: TestSupport.placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: 10, limits: TestSupport.limits)
        configuration.clientCounts = [1, 2]
        let reasons = configuration.cells.map { ($0.clients, $0.messageBytes, SuiteRunner.unavailableReason($0)) }
        for (clients, size, reason) in reasons {
            if clients > 1 && size > Int(PIPE_BUF) {
                #expect(reason?.contains("only writes of up to PIPE_BUF (\(PIPE_BUF) bytes) reach a FIFO whole") == true, "\(reasons)")
            } else {
                #expect(reason == nil, "\(clients) clients, \(size) bytes: \(reason ?? "")")
            }
        }
        #expect(reasons.count == 4)
    }

    @Test("A killed client fails the row and names it; the next row runs; nothing is left", arguments: ["unix-stream", "fifo", "shm-posix"])
    func killedClient(mechanism: String) throws {
        // shm-posix serves several clients with its spin variant only; posix-mq's one variant follows.
        let variants = mechanism == "shm-posix" ? ["--variants", "in-place/spin,mq_send/mq_receive"] : []
        let (result, rows, injected, scratch) = try TestSupport.runKillingOneWorker(
            ["--clients", "3", "--placements", "cross-cpu", "--mechanisms", "\(mechanism),posix-mq", "--sizes", "64", "--mode", "latency",
             "--duration", "3", "--repetitions", "1", "--cell-timeout", "30"] + variants, role: .producer, count: 3)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        #expect(injected, "could not find three clients")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(rows.count == 2)
        let failure = rows.first?["status"] ?? ""
        #expect(failure.hasPrefix("failed: ") && failure.contains("client") && failure.contains("SIGKILL"), "\(failure)")
        #expect(rows.last?["mechanism"] == "posix-mq" && rows.last?["status"] == "ok" && rows.last?["clients"] == "3", "\(rows.last ?? [:])")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
        #expect(Self.objects(inDevShmOf: result.pid).isEmpty, "\(Self.objects(inDevShmOf: result.pid))")
    }

    @Test("`ipcbench list` names every many-to-one and one-to-many shape")
    func listed() throws {
        let result = try TestSupport.runCLI(["list"])
        let after = result.stdout.components(separatedBy: "Many-to-one shapes (--clients").last ?? ""
        let parts = after.components(separatedBy: "One-to-many shapes (--readers")
        #expect(parts.count == 2, "\(result.stdout)")
        for mechanism in MechanismRegistry.all {
            #expect(parts[0].contains("  \(mechanism.id) ") == (mechanism is any FanInMechanism), "\(mechanism.id)")
            #expect(parts.last!.contains("  \(mechanism.id) ") == (mechanism is any FanOutMechanism), "\(mechanism.id)")
        }
    }

    @Test("--clients input is checked before any work")
    func badInput() throws {
        let cases: [([String], String)] = [
            (["--clients", "0"], "--clients: '0' is not a number of clients"),
            (["--clients", "2", "--pairs", "2"], "--pairs and --clients above 1 cannot be combined"),
            (["--clients", "2", "--placements", "smt-siblings"], "--clients above 1 works with the placements"),
        ]
        for (arguments, message) in cases {
            let result = try TestSupport.runCLI(["run", "--mechanisms", "unix-stream", "--quick"] + arguments + ["--out", "/nonexistent-dir/x.csv"])
            #expect(result.status == 2 && result.stderr.contains(message), "\(arguments): \(result.status) \(result.stderr)")
        }
    }
}
