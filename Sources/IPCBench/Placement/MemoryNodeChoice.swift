/// What `--memory-node` asks for: a NUMA node by number, or the consumer's own node (`local`) or
/// another one (`remote`), resolved per cell from where its consumer runs.
public enum MemoryNodeChoice: Sendable, Equatable, CustomStringConvertible {
    case node(Int)
    case local
    case remote

    public init?(_ text: String) {
        switch text {
        case "local": self = .local
        case "remote": self = .remote
        default:
            guard let node = Int(text), node >= 0 else { return nil }
            self = .node(node)
        }
    }

    public var description: String {
        switch self {
        case let .node(node): String(node)
        case .local: "local"
        case .remote: "remote"
        }
    }
}

/// Where a cell's shared memory goes.
public enum MemoryNodeResolution: Sendable, Equatable {
    /// No `--memory-node`, or a mechanism without shared memory: the kernel decides, the row's
    /// memory_node stays empty.
    case unbound
    case node(Int)
    /// Written as the cell's `unavailable: <reason>`: never silently another node.
    case unavailable(String)
}

/// The NUMA facts resolution needs, injectable so the rules can be tested for machines this is not.
public struct MemoryNodeFacts: Sendable {
    /// Why placement is impossible here (libnuma missing, no kernel support), or nil.
    public var unavailableReason: String?
    public var memoryNodes: [Int]
    public var nodeOfCPU: @Sendable (Int) -> Int?
    /// Node distance as in /sys (10 = local), nil when unknown.
    public var distance: @Sendable (Int, Int) -> Int?

    public init(
        unavailableReason: String?, memoryNodes: [Int], nodeOfCPU: @escaping @Sendable (Int) -> Int?,
        distance: @escaping @Sendable (Int, Int) -> Int?
    ) {
        self.unavailableReason = unavailableReason
        self.memoryNodes = memoryNodes
        self.nodeOfCPU = nodeOfCPU
        self.distance = distance
    }

    /// This machine: libnuma for nodes and CPUs, /sys for distances.
    public static func current() -> MemoryNodeFacts {
        let topology = try? Topology.read()
        return MemoryNodeFacts(
            unavailableReason: NUMA.unavailableReason, memoryNodes: NUMA.memoryNodes, nodeOfCPU: { NUMA.node(ofCPU: $0) },
            distance: { from, to in
                guard let node = topology?.nodes.first(where: { $0.id == from }),
                      let index = topology?.nodes.firstIndex(where: { $0.id == to }), index < node.distances.count
                else { return nil }
                return node.distances[index]
            })
    }

    /// Nodes `--memory-node N` may name: those with memory, or, where libnuma cannot say, the nodes
    /// /sys lists (so a typo is still refused; their cells are then unavailable with the reason).
    public static func nodesToOffer() -> [Int] {
        if NUMA.isAvailable { return NUMA.memoryNodes }
        let listed = SystemFacts.numaNodes
        return listed.isEmpty ? [0] : listed
    }

    /// The node `choice` means for a cell whose consumer runs on `consumerCPU` (nil: not pinned).
    public func resolve(_ choice: MemoryNodeChoice, consumerCPU: Int?) -> MemoryNodeResolution {
        if let unavailableReason { return .unavailable("--memory-node \(choice): NUMA memory placement is unavailable: \(unavailableReason)") }
        if case let .node(node) = choice {
            guard memoryNodes.contains(node) else {
                return .unavailable("--memory-node \(node): no such NUMA node with memory (nodes: \(Self.list(memoryNodes)))")
            }
            return .node(node)
        }
        guard let consumerCPU else {
            return .unavailable("--memory-node \(choice) is relative to the consumer's CPU, which this placement does not pin")
        }
        guard let local = nodeOfCPU(consumerCPU) else {
            return .unavailable("--memory-node \(choice): the NUMA node of CPU \(consumerCPU) is unknown")
        }
        switch choice {
        case .local:
            guard memoryNodes.contains(local) else {
                return .unavailable("--memory-node local: the consumer's node \(local) (CPU \(consumerCPU)) has no memory")
            }
            return .node(local)
        case .remote:
            let others = memoryNodes.filter { $0 != local }
            guard !others.isEmpty else {
                return .unavailable(memoryNodes.count <= 1
                    ? "--memory-node remote: only one NUMA node (node \(Self.list(memoryNodes)))"
                    : "--memory-node remote: no node other than the consumer's node \(local) has memory")
            }
            // The farthest node from the consumer; lowest id on ties or unknown distances.
            let farthest = others.max { (distance(local, $0) ?? 0, -$0) < (distance(local, $1) ?? 0, -$1) }!
            return .node(farthest)
        case .node:
            preconditionFailure("handled above")
        }
    }

    public static func list(_ nodes: [Int]) -> String {
        nodes.isEmpty ? "none" : nodes.map(String.init).joined(separator: ",")
    }
}

extension Cell {
    /// Where this cell's shared memory goes under its `memoryNode` choice.
    public func memoryNodeResolution(_ facts: () -> MemoryNodeFacts = MemoryNodeFacts.current) -> MemoryNodeResolution {
        guard let choice = memoryNode, mechanism.sharesMemory else { return .unbound }
        return facts().resolve(choice, consumerCPU: placement.consumerCPU)
    }
}
