import Foundation
import Glibc
import IPCBench
import Testing

@Suite("NUMA memory placement")
struct NUMATests {
    /// Runs `ipcbench run` with `arguments` in a fresh TMPDIR and returns the result and the CSV rows.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (TestSupport.CommandResult, [[String: String]]) {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/r.csv"
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--sizes", "64", "--mode", "latency", "--repetitions", "1", "--messages", "200",
             "--warmup", "20", "--quiet", "--out", csv] + arguments,
            environment: environment.merging(["TMPDIR": scratch]) { $1 })
        let rows = (try? TestSupport.readCSV(csv)) ?? []
        #expect(Set(TestSupport.entries(in: scratch)) == ["r.csv", "r.metadata.json"], "a cell left something behind")
        return (result, rows)
    }

    @Test("A shared region bound to a node has its pages there, as move_pages reports; a missing node is refused")
    func bindsAndVerifies() throws {
        try #require(NUMA.isAvailable, "this kernel has no NUMA support")
        let nodes = NUMA.memoryNodes
        #expect(!nodes.isEmpty)
        #expect(NUMA.node(ofCPU: Affinity.allowedCPUs()[0]) != nil)
        let length = 1 << 20
        let mapping = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, length) }
        let region = UnsafeMutableRawBufferPointer(start: mapping, count: length)
        let node = nodes.last!
        try NUMA.bind(region, toNode: node)
        #expect(try NUMA.pageNodes(of: UnsafeRawBufferPointer(region)) == [:], "nothing is faulted in yet")
        region.initializeMemory(as: UInt8.self, repeating: 1)
        #expect(try NUMA.pageNodes(of: UnsafeRawBufferPointer(region)) == [node: length / Int(sysconf(Int32(_SC_PAGESIZE)))])
        #expect(throws: IPCError.self) { try NUMA.bind(region, toNode: 4095) }
    }

    @Test("--memory-node 0: every shared-memory mechanism's rows say node 0 and are ok; other mechanisms' rows stay unbound")
    func boundRows() throws {
        try #require(NUMA.memoryNodes.contains(0), "node 0 has no memory here")
        let (result, rows) = try Self.run(["--mechanisms", "shm-posix,shm-sysv,mmap-file,memfd,pipe", "--variants",
                                           "in-place/semaphore,scm-rights/in-place,write/read", "--memory-node", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(rows.map { $0["mechanism"]! } == ["shm-posix", "shm-sysv", "mmap-file", "memfd", "pipe"])
        for row in rows {
            #expect(row["status"] == "ok", "\(row["mechanism"]!): \(row["status"]!)")
            #expect(row["memory_node"] == (row["mechanism"] == "pipe" ? "" : "0"), "\(row["mechanism"]!)")
        }
    }

    @Test("Each worker checks the bound pages: a cell reports how many it found on the node")
    func workersVerifyPages() throws {
        try #require(NUMA.memoryNodes.contains(0), "node 0 has no memory here")
        var configuration = RunConfiguration(
            mechanisms: ["shm-posix", "memfd", "pipe"].map { MechanismRegistry.mechanism(id: $0)! }, modes: [.throughput],
            variants: ["in-place/spin", "scm-rights/in-place", "write/read"], sizes: [4096], placement: TestSupport.placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: 500, warmupMessages: 20, limits: TestSupport.limits)
        configuration.memoryNode = .node(0)
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        try #require(outcomes.count == 3)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let ring = RingLayout(messageBytes: 4096, mode: .throughput)
        #expect(outcomes[0].status == .ok && outcomes[0].memoryNode == 0, "\(outcomes[0].status.text)")
        #expect(outcomes[0].verifiedMemoryPages == (ring.segmentBytes + page - 1) / page)
        #expect(outcomes[1].status == .ok && outcomes[1].memoryNode == 0 && (outcomes[1].verifiedMemoryPages ?? 0) > 0, "\(outcomes[1].status.text)")
        #expect(outcomes[2].status == .ok && outcomes[2].memoryNode == nil && outcomes[2].verifiedMemoryPages == nil)
    }

    @Test("The kernel holds the binding: a worker's mapping of the segment has policy bind:<node> in numa_maps")
    func kernelSeesBinding() throws {
        try #require(NUMA.memoryNodes.contains(0), "node 0 has no memory here")
        var policy = ""
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "shm-posix", "--variants", "in-place/semaphore", "--sizes", "64",
             "--mode", "latency", "--repetitions", "1", "--duration", "1", "--memory-node", "0", "--quiet", "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch]
        ) { pid in
            _ = TestSupport.waitFor(seconds: 10) {
                guard let consumer = TestSupport.children(of: pid).first(where: { $0.commandLine.contains(#""role":"consumer""#) }),
                      let maps = SystemFacts.readWhole("/proc/\(consumer.pid)/numa_maps"),
                      let line = maps.split(separator: "\n").first(where: { $0.contains("/dev/shm/ipcbench-") })
                else { return false }
                policy = String(line.split(separator: " ")[1])
                return true
            }
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(policy == "bind:0", "the segment's policy in the consumer: '\(policy)'")
    }

    @Test("--memory-node remote on a one-node machine is unavailable, never silently local")
    func remoteNeedsTwoNodes() throws {
        try #require(NUMA.isAvailable)
        let (result, rows) = try Self.run(["--mechanisms", "shm-sysv,pipe", "--memory-node", "remote"])
        #expect(result.status == 0, "\(result.stderr)")
        try #require(rows.count == 2)
        if NUMA.memoryNodes.count == 1 {
            #expect(rows[0]["status"] == "unavailable: --memory-node remote: only one NUMA node (node \(NUMA.memoryNodes[0]))")
            #expect(rows[0]["memory_node"] == "")
        } else {
            #expect(rows[0]["status"] == "ok" && rows[0]["memory_node"] != String(NUMA.node(ofCPU: Int(rows[0]["consumer_cpu"]!)!)!))
        }
        #expect(rows[1]["status"] == "ok" && rows[1]["memory_node"] == "")
    }

    @Test("local and remote follow the consumer's CPU; an unpinned consumer has no local node")
    func resolution() {
        // Two nodes, CPUs 0-1 on node 0 and 2-3 on node 1, plus a memory-only node 2 nearer node 0.
        let distances = [0: [0: 10, 1: 21, 2: 12], 1: [0: 21, 1: 10, 2: 21], 2: [0: 12, 1: 21, 2: 10]]
        let facts = MemoryNodeFacts(
            unavailableReason: nil, memoryNodes: [0, 1, 2], nodeOfCPU: { $0 < 2 ? 0 : 1 }, distance: { distances[$0]?[$1] })
        #expect(facts.resolve(.local, consumerCPU: 3) == .node(1))
        #expect(facts.resolve(.remote, consumerCPU: 0) == .node(1), "the farthest node")
        #expect(facts.resolve(.remote, consumerCPU: 2) == .node(0), "ties go to the lowest id")
        #expect(facts.resolve(.node(2), consumerCPU: nil) == .node(2))
        #expect(facts.resolve(.node(5), consumerCPU: 0) == .unavailable("--memory-node 5: no such NUMA node with memory (nodes: 0,1,2)"))
        guard case let .unavailable(reason) = facts.resolve(.local, consumerCPU: nil) else { Issue.record("resolved without a CPU"); return }
        #expect(reason.contains("does not pin"))

        let oneNode = MemoryNodeFacts(unavailableReason: nil, memoryNodes: [0], nodeOfCPU: { _ in 0 }, distance: { _, _ in 10 })
        #expect(oneNode.resolve(.remote, consumerCPU: 1) == .unavailable("--memory-node remote: only one NUMA node (node 0)"))
        let missing = MemoryNodeFacts(unavailableReason: "libnuma could not be loaded (x)", memoryNodes: [], nodeOfCPU: { _ in nil }, distance: { _, _ in nil })
        #expect(missing.resolve(.node(0), consumerCPU: 0) == .unavailable("--memory-node 0: NUMA memory placement is unavailable: libnuma could not be loaded (x)"))
    }

    @Test("Pages found off the bound node fail the cell with a clear reason")
    func mismatchReason() {
        #expect(MemoryBinding.mismatch(node: 1, pageNodes: [1: 8], totalPages: 8) == nil)
        #expect(MemoryBinding.mismatch(node: 1, pageNodes: [0: 3, 1: 4], totalPages: 8)
            == "shared memory bound to NUMA node 1, but move_pages finds only 4 of its 8 pages there (3 on node 0, 1 not present)")
    }

    @Test("Without libnuma the tool says so, writes NUMA cells as unavailable and runs the rest")
    func libnumaMissing() throws {
        let missing = ["IPCBENCH_TEST_LIBNUMA": "libnuma-missing-for-test.so.1"]
        let topology = try TestSupport.runCLI(["topology"], environment: missing)
        #expect(topology.status == 0)
        #expect(topology.stdout.contains("NUMA memory placement (--memory-node): unavailable: libnuma could not be loaded (libnuma-missing-for-test.so.1"),
                "\(topology.stdout)")

        let (result, rows) = try Self.run(["--mechanisms", "pipe,shm-posix", "--variants", "write/read,in-place/spin", "--memory-node", "0"],
                                          environment: missing)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning: --memory-node: NUMA memory placement is unavailable here: libnuma could not be loaded"), "\(result.stderr)")
        try #require(rows.count == 2)
        #expect(rows[0]["mechanism"] == "pipe" && rows[0]["status"] == "ok" && rows[0]["memory_node"] == "")
        #expect(rows[1]["status"]?.hasPrefix("unavailable: --memory-node 0: NUMA memory placement is unavailable: libnuma could not be loaded") == true,
                "\(rows[1]["status"] ?? "")")

        // A node that does not exist is still refused up front (from /sys), before any worker starts.
        let refused = try TestSupport.runCLI(["run", "--quick", "--memory-node", "4095"], environment: missing)
        #expect(refused.status == 2 && refused.stderr.contains("--memory-node 4095: no such NUMA node"), "\(refused.stderr)")
    }
}
