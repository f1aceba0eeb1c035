import Foundation
import IPCBench
import Testing

@Suite("Topology and placements")
struct TopologyTests {
    /// Copies of /sys trees under Tests/Fixtures/sysfs (outside the test target, so SwiftPM ignores them).
    static func fixture(_ name: String, filePath: String = #filePath) throws -> Topology {
        let tests = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        return try Topology.read(sysfsRoot: tests.appendingPathComponent("Fixtures/sysfs/\(name)").path)
    }

    /// Every named placement's expansion as text: "a,b", "unpinned" or the unavailable reason.
    static func expansions(_ topology: Topology, allowed: [Int]? = nil) -> [NamedPlacement: String] {
        var result: [NamedPlacement: String] = [:]
        for placement in NamedPlacement.allCases {
            switch expand(placement, topology: topology, allowedCPUs: allowed ?? topology.onlineCPUs) {
            case let .pinned(chosen):
                #expect(chosen.name == placement.rawValue)
                result[placement] = "\(chosen.producerCPU!),\(chosen.consumerCPU!)"
            case let .unpinned(chosen):
                #expect(chosen.name == "unpinned" && chosen.producerCPU == nil && chosen.consumerCPU == nil)
                result[placement] = "unpinned"
            case let .unavailable(reason):
                #expect(reason.hasPrefix(placement.rawValue + ": "))
                result[placement] = reason
            }
        }
        return result
    }

    @Test("Named placements use the exact raw values of the CLI and CSV")
    func rawValues() {
        #expect(NamedPlacement.allCases.map(\.rawValue) == ["same-cpu", "smt-siblings", "same-l3", "cross-l3", "cross-numa", "unpinned"])
        #expect(Topology.formatCPUList([8, 0, 1, 2, 3, 10]) == "0-3,8,10")
        #expect(Topology.formatCPUList([]) == "")
    }

    @Test("This machine's copy: 2 CPUs, 2 cores, no SMT, one shared L3, one node")
    func thisMachine() throws {
        let topology = try Self.fixture("this-machine")
        #expect(topology.onlineCPUs == [0, 1])
        #expect(topology.cores == [[0], [1]])
        #expect(topology.packages == [0])
        #expect(!topology.smtActive)
        #expect(topology.l3Groups == [[0, 1]])
        #expect(topology.numaExposed)
        #expect(topology.nodes == [Topology.Node(id: 0, cpus: [0, 1], distances: [10])])
        #expect(topology.cpus.map(\.node) == [0, 0])

        let expanded = Self.expansions(topology)
        #expect(expanded[.sameCPU] == "0,0")
        #expect(expanded[.smtSiblings] == "smt-siblings: SMT is off or absent (no CPU has a sibling)")
        #expect(expanded[.sameL3] == "0,1")
        #expect(expanded[.crossL3] == "cross-l3: every CPU shares one L3 cache")
        #expect(expanded[.crossNUMA] == "cross-numa: this machine exposes 1 NUMA node")
        #expect(expanded[.unpinned] == "unpinned")
    }

    @Test("Two sockets × 4 cores × 2 threads: siblings N and N+8, one L3 and one node per socket")
    func twoSocketSMT() throws {
        let topology = try Self.fixture("two-socket-smt")
        #expect(topology.onlineCPUs == Array(0..<16))
        #expect(topology.cores == (0..<8).map { [$0, $0 + 8] })
        #expect(topology.packages == [0, 1])
        #expect(topology.smtActive)
        let cpu13 = try #require(topology.cpu(13))
        #expect(cpu13.packageID == 1 && cpu13.coreID == 1 && cpu13.siblings == [5, 13] && cpu13.node == 1)
        #expect(topology.l3Groups == [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]])
        #expect(topology.nodes.map(\.id) == [0, 1])
        #expect(topology.nodes.map(\.cpus) == topology.l3Groups)
        #expect(topology.nodes.map(\.distances) == [[10, 21], [21, 10]])
        #expect(topology.distance(from: 1, to: 0) == 21)

        let expanded = Self.expansions(topology)
        #expect(expanded[.sameCPU] == "0,0")
        #expect(expanded[.smtSiblings] == "0,8")
        #expect(expanded[.sameL3] == "0,1")
        #expect(expanded[.crossL3] == "cross-l3: each NUMA node has a single L3 cache, so crossing L3 means crossing nodes (see cross-numa)")
        #expect(expanded[.crossNUMA] == "0,4")
        #expect(expanded[.unpinned] == "unpinned")
    }

    @Test("One socket, 16 cores, no SMT, four L3 groups (CCX) of four cores, one node")
    func oneSocketMultiL3() throws {
        let topology = try Self.fixture("one-socket-multi-l3")
        #expect(topology.onlineCPUs == Array(0..<16))
        #expect(topology.cores == (0..<16).map { [$0] })
        #expect(!topology.smtActive)
        #expect(topology.l3Groups == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]])
        #expect(topology.nodes == [Topology.Node(id: 0, cpus: Array(0..<16), distances: [10])])

        let expanded = Self.expansions(topology)
        #expect(expanded[.sameCPU] == "0,0")
        #expect(expanded[.smtSiblings] == "smt-siblings: SMT is off or absent (no CPU has a sibling)")
        #expect(expanded[.sameL3] == "0,1")
        #expect(expanded[.crossL3] == "0,4")
        #expect(expanded[.crossNUMA] == "cross-numa: this machine exposes 1 NUMA node")
    }

    @Test("Only cpu/online present: each CPU its own core, no L3 known, NUMA flagged as not exposed")
    func minimalTree() throws {
        let topology = try Self.fixture("minimal")
        #expect(topology.onlineCPUs == [0, 1, 2, 3])
        #expect(topology.cores == [[0], [1], [2], [3]])
        #expect(topology.l3Groups.isEmpty)
        #expect(!topology.numaExposed)
        #expect(topology.nodes == [Topology.Node(id: 0, cpus: [0, 1, 2, 3], distances: [10])])
        #expect(topology.description.contains("NUMA: not exposed"))

        let expanded = Self.expansions(topology)
        #expect(expanded[.sameCPU] == "0,0")
        #expect(expanded[.sameL3] == "same-l3: the kernel exposes no L3 cache information")
        #expect(expanded[.crossL3] == "cross-l3: the kernel exposes no L3 cache information")
        #expect(expanded[.crossNUMA]?.hasPrefix("cross-numa: NUMA is not exposed") == true)
    }

    @Test("A tree without cpu/online is an error, not an empty topology")
    func missingRoot() {
        #expect(throws: IPCError.self) { try Topology.read(sysfsRoot: "/nonexistent-ipcbench-sysfs") }
    }

    @Test("The affinity mask restricts the choice and can make a placement unavailable")
    func affinityMask() throws {
        let topology = try Self.fixture("two-socket-smt")
        // Socket 0 only: no NUMA crossing left, the rest stays on socket 0.
        let socket0 = Self.expansions(topology, allowed: [0, 1, 2, 3, 8, 9, 10, 11])
        #expect(socket0[.crossNUMA] == "cross-numa: the allowed CPUs are all on NUMA node 0 (allowed CPUs: 0-3,8-11)")
        #expect(socket0[.smtSiblings] == "0,8")
        // Mask order does not matter; the lowest allowed ids win.
        let scattered = Self.expansions(topology, allowed: [13, 9, 6, 1])
        #expect(scattered[.sameCPU] == "1,1")
        #expect(scattered[.smtSiblings] == "1,9")
        #expect(scattered[.sameL3] == "6,13") // 1 and 9 share a core; 6 and 13 are two cores of socket 1
        #expect(scattered[.crossNUMA] == "1,6")
        // One core's two threads: siblings yes, two different cores no.
        let oneCore = Self.expansions(topology, allowed: [3, 11])
        #expect(oneCore[.smtSiblings] == "3,11")
        #expect(oneCore[.sameL3]?.hasPrefix("same-l3: no two allowed CPUs") == true)
        // No allowed CPU at all.
        #expect(Self.expansions(topology, allowed: [])[.sameCPU] == "same-cpu: no allowed CPU is online (allowed CPUs: none)")

        let ccx = try Self.fixture("one-socket-multi-l3")
        let oneCCX = Self.expansions(ccx, allowed: [4, 5, 6, 7])
        #expect(oneCCX[.crossL3] == "cross-l3: no two allowed CPUs on one NUMA node have different L3 caches (allowed CPUs: 4-7)")
        #expect(oneCCX[.sameL3] == "4,5")
        #expect(Self.expansions(ccx, allowed: [2, 3, 15])[.crossL3] == "2,15")
    }

    @Test("cross-numa prefers the farthest pair of nodes, lowest ids on ties")
    func farthestNodes() {
        // Four nodes of two CPUs; node 0 ↔ 3 is the farthest, 1 ↔ 2 ties with 0 ↔ 2 below it.
        let distances = [[10, 16, 22, 32], [16, 10, 22, 22], [22, 22, 10, 16], [32, 22, 16, 10]]
        let nodes = (0..<4).map { Topology.Node(id: $0, cpus: [2 * $0, 2 * $0 + 1], distances: distances[$0]) }
        let cpus = (0..<8).map {
            Topology.CPU(id: $0, packageID: $0 / 2, coreID: $0 % 2, siblings: [$0], l3CPUs: [$0 / 2 * 2, $0 / 2 * 2 + 1], node: $0 / 2)
        }
        let topology = Topology(cpus: cpus, nodes: nodes, numaExposed: true)
        #expect(Self.expansions(topology)[.crossNUMA] == "0,6")
        // Without node 3, nodes 0–2, 1–2 tie at 22: the lowest pair wins.
        #expect(Self.expansions(topology, allowed: [1, 3, 4, 5])[.crossNUMA] == "1,4")
        // A memory-only node is not a place to run.
        var memoryOnly = Topology(cpus: Array(cpus.prefix(2)), nodes: [nodes[0], Topology.Node(id: 1, cpus: [], distances: [16, 10])], numaExposed: true)
        memoryOnly.nodes[0].distances = [10, 16]
        #expect(Self.expansions(memoryOnly)[.crossNUMA] == "cross-numa: only 1 of the 2 NUMA nodes has CPUs")
    }

    @Test("The description names CPUs, cores, SMT, L3 groups, nodes and distances; the topology round-trips through JSON")
    func descriptionAndCoding() throws {
        let topology = try Self.fixture("two-socket-smt")
        let text = topology.description
        for line in [
            "CPUs: 16 online (0-15), 8 physical cores in 2 packages",
            "SMT: on, up to 2 threads per core (e.g. CPUs 0,8 share a core)",
            "L3: 2 caches, shared by 0-3,8-11 | 4-7,12-15",
            "NUMA: 2 nodes",
            "  node 0: CPUs 0-3,8-11",
            "  node   0   1",
            "    0:  10  21",
            "    1:  21  10",
        ] {
            #expect(text.contains(line), "\(line)\n--- in ---\n\(text)")
        }
        let data = try JSONEncoder().encode(topology)
        #expect(try JSONDecoder().decode(Topology.self, from: data) == topology)
    }

    @Test("This machine's /sys parses and agrees with the affinity mask")
    func realSysfs() throws {
        let topology = try Topology.read()
        let allowed = Affinity.allowedCPUs()
        #expect(!topology.cpus.isEmpty)
        #expect(!allowed.isEmpty)
        #expect(Set(allowed).isSubset(of: Set(topology.onlineCPUs)), "allowed \(allowed) online \(topology.onlineCPUs)")
        for cpu in topology.cpus {
            #expect(cpu.siblings.contains(cpu.id))
            #expect(cpu.l3CPUs?.contains(cpu.id) ?? true)
            #expect(cpu.node != nil)
        }
        // Every node lists a distance to every node, 10 to itself.
        for (index, node) in topology.nodes.enumerated() {
            #expect(node.distances.count == topology.nodes.count)
            #expect(node.distances[index] == 10)
        }
        // Whatever the machine, an expansion only ever picks allowed CPUs.
        for placement in NamedPlacement.allCases {
            if case let .pinned(chosen) = expand(placement, topology: topology, allowedCPUs: allowed) {
                #expect(allowed.contains(chosen.producerCPU!) && allowed.contains(chosen.consumerCPU!), "\(placement)")
            }
        }
        #expect(expand(.sameCPU, topology: topology, allowedCPUs: allowed) == .pinned(Placement(name: "same-cpu", producerCPU: allowed[0], consumerCPU: allowed[0])))
    }
}
