/// A placement a user asks for by what it measures rather than by CPU numbers.
public enum NamedPlacement: String, CaseIterable, Codable, Sendable {
    /// Both workers on one CPU: every message hand-off is a context switch.
    case sameCPU = "same-cpu"
    /// Two hardware threads of one physical core (shared L1/L2).
    case smtSiblings = "smt-siblings"
    /// Two different physical cores sharing an L3 cache.
    case sameL3 = "same-l3"
    /// Two cores with different L3 caches on the same NUMA node.
    case crossL3 = "cross-l3"
    /// Two CPUs on different NUMA nodes, the farthest pair when there are more than two nodes.
    case crossNUMA = "cross-numa"
    /// No pinning: the scheduler decides.
    case unpinned
}

/// What a named placement means on this machine with this affinity mask.
public enum PlacementChoice: Sendable, Equatable {
    /// Two concrete CPUs; the placement's name is the named placement's raw value.
    case pinned(Placement)
    /// No CPUs (`unpinned`).
    case unpinned(Placement)
    /// The machine or the affinity mask cannot provide it; the reason starts with the placement's name.
    case unavailable(reason: String)
}

extension Placement {
    /// A placement with an explicit name, e.g. `smt-siblings`, instead of the one derived from the CPUs.
    public init(name: String, producerCPU: Int?, consumerCPU: Int?) {
        self.init(producerCPU: producerCPU, consumerCPU: consumerCPU)
        self.name = name
    }
}

/// Turns `placement` into CPUs of `topology` that are also in `allowedCPUs` (the affinity mask).
///
/// Deterministic: the pair with the lowest producer CPU, then the lowest consumer CPU, is chosen. When the
/// machine or the mask cannot provide the placement the result is `.unavailable` with a reason; another
/// placement is never substituted.
public func expand(_ placement: NamedPlacement, topology: Topology, allowedCPUs: [Int]) -> PlacementChoice {
    let name = placement.rawValue
    let allowedSet = Set(allowedCPUs)
    let candidates = topology.cpus.filter { allowedSet.contains($0.id) }
    let allowedText = "allowed CPUs: " + (allowedCPUs.isEmpty ? "none" : Topology.formatCPUList(allowedCPUs))

    func pinned(_ producer: Int, _ consumer: Int) -> PlacementChoice {
        .pinned(Placement(name: name, producerCPU: producer, consumerCPU: consumer))
    }
    func unavailable(_ reason: String) -> PlacementChoice { .unavailable(reason: "\(name): \(reason)") }
    /// The lowest (a, b) with a < b among `cpus` that satisfies `matches`.
    func firstPair(_ cpus: [Topology.CPU], _ matches: (Topology.CPU, Topology.CPU) -> Bool) -> (Int, Int)? {
        for (index, first) in cpus.enumerated() {
            if let second = cpus[(index + 1)...].first(where: { matches(first, $0) }) { return (first.id, second.id) }
        }
        return nil
    }
    func sameCore(_ a: Topology.CPU, _ b: Topology.CPU) -> Bool { a.siblings.contains(b.id) }
    func sameL3(_ a: Topology.CPU, _ b: Topology.CPU) -> Bool { a.l3CPUs?.contains(b.id) ?? false }

    switch placement {
    case .unpinned:
        return .unpinned(Placement(name: name, producerCPU: nil, consumerCPU: nil))

    case .sameCPU:
        guard let first = candidates.first else { return unavailable("no allowed CPU is online (\(allowedText))") }
        return pinned(first.id, first.id)

    case .smtSiblings:
        guard topology.smtActive else { return unavailable("SMT is off or absent (no CPU has a sibling)") }
        guard let (a, b) = firstPair(candidates, sameCore) else {
            return unavailable("no two allowed CPUs are hardware threads of one core (\(allowedText))")
        }
        return pinned(a, b)

    case .sameL3:
        guard !topology.l3Groups.isEmpty else { return unavailable("the kernel exposes no L3 cache information") }
        let sharing = { (a: Topology.CPU, b: Topology.CPU) in sameL3(a, b) && !sameCore(a, b) }
        guard firstPair(topology.cpus, sharing) != nil else {
            return unavailable("no two physical cores share an L3 cache")
        }
        guard let (a, b) = firstPair(candidates, sharing) else {
            return unavailable("no two allowed CPUs on different cores share an L3 cache (\(allowedText))")
        }
        return pinned(a, b)

    case .crossL3:
        let groups = topology.l3Groups
        guard !groups.isEmpty else { return unavailable("the kernel exposes no L3 cache information") }
        guard groups.count > 1 else { return unavailable("every CPU shares one L3 cache") }
        let crossing = { (a: Topology.CPU, b: Topology.CPU) in
            a.l3CPUs != nil && b.l3CPUs != nil && !sameL3(a, b) && a.node != nil && a.node == b.node
        }
        guard firstPair(topology.cpus, crossing) != nil else {
            return unavailable("each NUMA node has a single L3 cache, so crossing L3 means crossing nodes (see cross-numa)")
        }
        guard let (a, b) = firstPair(candidates, crossing) else {
            return unavailable("no two allowed CPUs on one NUMA node have different L3 caches (\(allowedText))")
        }
        return pinned(a, b)

    case .crossNUMA:
        guard topology.numaExposed else {
            return unavailable("NUMA is not exposed by this kernel (no /sys/devices/system/node); treated as 1 node")
        }
        let nodesWithCPUs = topology.nodes.filter { !$0.cpus.isEmpty }
        guard nodesWithCPUs.count > 1 else {
            return topology.nodes.count == 1
                ? unavailable("this machine exposes 1 NUMA node")
                : unavailable("only 1 of the \(topology.nodes.count) NUMA nodes has CPUs")
        }
        // The lowest allowed CPU of each node that has one.
        let representatives: [(node: Int, cpu: Int)] = nodesWithCPUs.compactMap { node in
            candidates.first { $0.node == node.id }.map { (node.id, $0.id) }
        }
        guard representatives.count > 1 else {
            let location = representatives.first.map { "all on NUMA node \($0.node)" } ?? "on no NUMA node"
            return unavailable("the allowed CPUs are \(location) (\(allowedText))")
        }
        // The farthest pair of nodes; ties go to the lowest node ids (pairs are visited in that order).
        var best = (producer: representatives[0].cpu, consumer: representatives[1].cpu, distance: Int.min)
        for (index, first) in representatives.enumerated() {
            for second in representatives[(index + 1)...] {
                let distance = topology.distance(from: first.node, to: second.node) ?? 0
                if distance > best.distance { best = (first.cpu, second.cpu, distance) }
            }
        }
        return pinned(best.producer, best.consumer)
    }
}
