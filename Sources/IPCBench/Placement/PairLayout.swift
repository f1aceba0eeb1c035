/// The CPUs of one producer/consumer pair (nil: not pinned).
public struct PairCPUs: Sendable, Equatable, Codable {
    public var producer: Int?
    public var consumer: Int?

    public init(producer: Int?, consumer: Int?) {
        self.producer = producer
        self.consumer = consumer
    }
}

/// Where the workers of `--pairs N` run: N pairs of the same cell at once.
///
/// Pair 0 keeps the cell's placement, so the first pair sits where a single pair would in every
/// row of a sweep. The other pairs spread from there: first over physical cores no other worker
/// uses, each pair on two cores of the L3 group (or package) with the fewest workers so far; then
/// over the remaining hardware threads (SMT siblings) the same way; past the CPUs they wrap
/// around and share them, producers and consumers swapping CPUs on every other turn. `sharing` says which of these the row reached.
public struct PairLayout: Sendable, Equatable {
    public enum Sharing: String, Sendable, Codable {
        /// No two pairs share a physical core.
        case none
        /// Pairs share physical cores, each worker on its own hardware thread.
        case smt
        /// Some CPU runs workers of more than one pair: more workers than CPUs.
        case cpu
        /// The scheduler places the workers.
        case unpinned
    }

    public var pairs: [PairCPUs]
    public var sharing: Sharing
    /// Unpinned: more workers than allowed CPUs, so some must share one (the scheduler picks which).
    public var unpinnedOverCommitted = false

    /// The policy in words, for the metadata.
    public static let policy = "pair 0 at the cell's placement; the others spread over unused physical cores (each pair on two cores of the L3 group with the fewest workers so far), then over SMT siblings, then sharing CPUs (pair_sharing: none, smt, cpu); --clients: the server at the consumer CPU, client 0 at the producer CPU, the others spread the same way over the CPUs left"

    public init(pairs: [PairCPUs], sharing: Sharing) {
        self.pairs = pairs
        self.sharing = sharing
    }

    /// One pair at `placement`.
    public init(single placement: Placement) {
        pairs = [PairCPUs(producer: placement.producerCPU, consumer: placement.consumerCPU)]
        sharing = placement.producerCPU == nil ? .unpinned : .none
    }

    /// `count` pairs around `placement`'s pair (two CPUs, one CPU or unpinned), over the `allowed`
    /// CPUs of `topology` (nil: each CPU its own core, one L3 group).
    public static func spread(_ count: Int, around placement: Placement, topology: Topology?, allowed: [Int]) -> PairLayout {
        guard let first = placement.producerCPU, let second = placement.consumerCPU else {
            var layout = PairLayout(pairs: Array(repeating: PairCPUs(producer: nil, consumer: nil), count: count), sharing: .unpinned)
            layout.unpinnedOverCommitted = 2 * count > allowed.count
            return layout
        }
        let machine = CPUOrder(topology: topology, allowed: allowed)
        if first == second {
            // Each pair on one CPU of its own while there are CPUs, then pairs share them.
            let slots = [first] + machine.spreadOrder(excluding: [first])
            let pairs = (0..<count).map { index in PairCPUs(producer: slots[index % slots.count], consumer: slots[index % slots.count]) }
            return PairLayout(pairs: pairs, sharing: machine.sharing(pairs.map { [$0.producer!] }))
        }
        let slots = [first, second] + machine.pairedOrder(excluding: [first, second])
        let pairs = (0..<count).map { index in
            let producer = slots[(2 * index) % slots.count], consumer = slots[(2 * index + 1) % slots.count]
            // Every other time round the CPUs the roles swap, so with an even number of CPUs each
            // shared CPU runs producers and consumers alike (on two: 0>1 1>0, not 0>1 0>1).
            return (2 * index / slots.count) % 2 == 0
                ? PairCPUs(producer: producer, consumer: consumer) : PairCPUs(producer: consumer, consumer: producer)
        }
        return PairLayout(pairs: pairs, sharing: machine.sharing(pairs.map { [$0.producer!, $0.consumer!] }))
    }

    /// `--clients`: one server at `placement`'s consumer CPU and `count` clients, the first at its
    /// producer CPU, the others spread over the CPUs left (then sharing them) in the same order as
    /// pairs. Same-cpu: every client on the server's CPU. Each client is a "pair" with the server.
    public static func fanIn(_ count: Int, around placement: Placement, topology: Topology?, allowed: [Int]) -> PairLayout {
        guard let first = placement.producerCPU, let server = placement.consumerCPU else {
            var layout = PairLayout(pairs: Array(repeating: PairCPUs(producer: nil, consumer: nil), count: count), sharing: .unpinned)
            layout.unpinnedOverCommitted = count + 1 > allowed.count
            return layout
        }
        let machine = CPUOrder(topology: topology, allowed: allowed)
        let slots = first == server ? [first] : [first] + machine.spreadOrder(excluding: [first, server])
        let pairs = (0..<count).map { PairCPUs(producer: slots[$0 % slots.count], consumer: server) }
        return PairLayout(pairs: pairs, sharing: machine.sharing(pairs.map { [$0.producer!] } + [[server]]))
    }

    /// `--readers`: the producer at `placement`'s producer CPU, reader 0 at its consumer CPU, the
    /// other readers spread over the CPUs left as clients are (each reader a "pair" with the producer).
    public static func fanOut(_ count: Int, around placement: Placement, topology: Topology?, allowed: [Int]) -> PairLayout {
        var mirrored = fanIn(count, around: Placement(producerCPU: placement.consumerCPU, consumerCPU: placement.producerCPU), topology: topology, allowed: allowed)
        mirrored.pairs = mirrored.pairs.map { PairCPUs(producer: $0.consumer, consumer: $0.producer) }
        return mirrored
    }

    /// "0>1 2>3": producer>consumer CPU of each pair (empty when unpinned), for the CSV.
    public var text: String {
        guard sharing != .unpinned else { return "" }
        return pairs.map { "\($0.producer.map(String.init) ?? "")>\($0.consumer.map(String.init) ?? "")" }.joined(separator: " ")
    }

    /// Whether another worker of the cell runs on one of pair `index`'s CPUs (its spinning waiters
    /// must then give the CPU up at once).
    public func sharesCPU(pair index: Int) -> Bool {
        if unpinnedOverCommitted { return true }
        let own = pairs[index]
        if own.producer != nil, own.producer == own.consumer { return true }
        return pairs.indices.contains { other in
            other != index && [pairs[other].producer, pairs[other].consumer].contains { $0 != nil && ($0 == own.producer || $0 == own.consumer) }
        }
    }

    /// `--clients`: whether client `index` shares its CPU with the server or with another client.
    /// (Every pair of a fan-in layout has the server as its consumer, which `sharesCPU(pair:)` would
    /// count as sharing even for a client alone on its CPU.)
    public func clientSharesCPU(_ index: Int) -> Bool {
        if unpinnedOverCommitted { return true }
        guard let own = pairs[index].producer else { return false }
        return own == pairs[index].consumer || pairs.indices.contains { $0 != index && pairs[$0].producer == own }
    }

    /// `--clients`: whether a client runs on the server's CPU.
    public var serverSharesCPU: Bool {
        if unpinnedOverCommitted { return true }
        guard let server = pairs.first?.consumer else { return false }
        return pairs.contains { $0.producer == server }
    }
}

/// The allowed CPUs ordered for spreading: by hardware-thread level (first threads of cores, then
/// second threads, …); within a level, each pick goes to the L3 group (or package when the kernel
/// shows no L3) holding the fewest workers so far, the lowest group on a tie.
private struct CPUOrder {
    /// CPU id → the lowest allowed CPU of its physical core.
    private var coreOf: [Int: Int] = [:]
    /// CPU id → its group's index.
    private var groupOf: [Int: Int] = [:]
    /// Per level, per group: the CPUs, ascending.
    private var levels: [[[Int]]] = []

    init(topology: Topology?, allowed: [Int]) {
        let allowedSet = Set(allowed)
        let cpus = (topology?.cpus ?? []).filter { allowedSet.contains($0.id) }
        let known = Set(cpus.map(\.id))
        // CPUs the topology does not describe: each its own core in package 0.
        let described = cpus + allowed.filter { !known.contains($0) }.sorted().map {
            Topology.CPU(id: $0, packageID: 0, coreID: $0, siblings: [$0], l3CPUs: nil, node: nil)
        }
        var groups: [[Int]: [Topology.CPU]] = [:]
        for cpu in described {
            let key = (cpu.l3CPUs ?? []).isEmpty ? [-1 - cpu.packageID] : cpu.l3CPUs!
            groups[key, default: []].append(cpu)
        }
        let ordered = groups.values.sorted { $0.map(\.id).min()! < $1.map(\.id).min()! }
        var level: [Int: Int] = [:]
        for (index, group) in ordered.enumerated() {
            for cpu in group {
                let threads = cpu.siblings.filter(allowedSet.contains)
                coreOf[cpu.id] = threads.first ?? cpu.id
                groupOf[cpu.id] = index
                level[cpu.id] = threads.firstIndex(of: cpu.id) ?? 0
            }
        }
        let deepest = (level.values.max() ?? 0) + 1
        levels = (0..<deepest).map { depth in
            ordered.map { group in group.map(\.id).filter { level[$0] == depth }.sorted() }
        }
    }

    /// Single CPUs, each from the least loaded group with a free CPU at the current level.
    func spreadOrder(excluding used: Set<Int>) -> [Int] {
        picks(taking: 1, excluding: used)
    }

    /// Two CPUs of one group per pair, from the least loaded group with two free at the current
    /// level; at the end of a level its odd CPUs pair across groups, and a last odd one comes last.
    func pairedOrder(excluding used: Set<Int>) -> [Int] {
        picks(taking: 2, excluding: used)
    }

    private func picks(taking size: Int, excluding used: Set<Int>) -> [Int] {
        var load = Array(repeating: 0, count: levels.first?.count ?? 0)
        for cpu in used { if let group = groupOf[cpu] { load[group] += 1 } }
        var order: [Int] = []
        var unpaired: [Int] = []
        for groups in levels {
            var queues = groups.map { $0.filter { !used.contains($0) } }
            while let group = queues.indices.filter({ queues[$0].count >= size }).min(by: { (load[$0], $0) < (load[$1], $1) }) {
                order += queues[group].prefix(size)
                queues[group].removeFirst(size)
                load[group] += size
            }
            unpaired += queues.flatMap { $0 }
            order += unpaired.prefix(unpaired.count / size * size)
            unpaired = Array(unpaired.suffix(unpaired.count % size))
        }
        return order + unpaired
    }

    /// How far the pairs (each a list of its workers' CPUs) share the machine.
    func sharing(_ pairs: [[Int]]) -> PairLayout.Sharing {
        var pairsOnCPU: [Int: Set<Int>] = [:]
        var pairsOnCore: [Int: Set<Int>] = [:]
        for (index, cpus) in pairs.enumerated() {
            for cpu in cpus {
                pairsOnCPU[cpu, default: []].insert(index)
                pairsOnCore[coreOf[cpu] ?? cpu, default: []].insert(index)
            }
        }
        // A same-cpu pair's two workers on one CPU are its placement, not sharing: pairs are counted.
        if pairsOnCPU.values.contains(where: { $0.count > 1 }) { return .cpu }
        if pairsOnCore.values.contains(where: { $0.count > 1 }) { return .smt }
        return .none
    }
}
