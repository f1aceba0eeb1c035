import Foundation

/// The machine's CPUs, cores, L3 caches and NUMA nodes, as Linux exposes them under /sys.
///
/// Read once at start-up (nothing here is timed); recorded in metadata.json and used to turn named
/// placements such as `smt-siblings` or `cross-numa` into two concrete CPUs.
public struct Topology: Codable, Sendable, Equatable {
    public struct CPU: Codable, Sendable, Equatable {
        public var id: Int
        public var packageID: Int
        /// `core_id`: unique only within a package, so compare `siblings` to tell cores apart.
        public var coreID: Int
        /// The online hardware threads of this CPU's physical core, itself included, ascending.
        public var siblings: [Int]
        /// The online CPUs sharing this CPU's L3 cache, itself included; nil when the kernel shows no L3.
        public var l3CPUs: [Int]?
        /// nil when the node directories exist but none lists this CPU.
        public var node: Int?

        public init(id: Int, packageID: Int, coreID: Int, siblings: [Int], l3CPUs: [Int]?, node: Int?) {
            self.id = id
            self.packageID = packageID
            self.coreID = coreID
            self.siblings = siblings
            self.l3CPUs = l3CPUs
            self.node = node
        }
    }

    public struct Node: Codable, Sendable, Equatable {
        public var id: Int
        /// Online CPUs of the node (empty for a memory-only node).
        public var cpus: [Int]
        /// Distance to each entry of `Topology.nodes`, in that order (the kernel's `node*/distance` order).
        public var distances: [Int]

        public init(id: Int, cpus: [Int], distances: [Int]) {
            self.id = id
            self.cpus = cpus
            self.distances = distances
        }
    }

    /// Online CPUs, ascending by id.
    public var cpus: [CPU]
    /// Ascending by id. A single synthetic node 0 holding every CPU when `numaExposed` is false.
    public var nodes: [Node]
    /// False when /sys has no node directories (kernel without NUMA, some containers).
    public var numaExposed: Bool

    public init(cpus: [CPU], nodes: [Node], numaExposed: Bool) {
        self.cpus = cpus
        self.nodes = nodes
        self.numaExposed = numaExposed
    }

    public var onlineCPUs: [Int] { cpus.map(\.id) }

    public func cpu(_ id: Int) -> CPU? { cpus.first { $0.id == id } }

    /// One entry per physical core: its hardware threads, ordered by their lowest CPU.
    public var cores: [[Int]] { Self.distinctGroups(cpus.map(\.siblings)) }

    public var packages: [Int] { Array(Set(cpus.map(\.packageID))).sorted() }

    /// True when some core runs more than one online hardware thread.
    public var smtActive: Bool { cpus.contains { $0.siblings.count > 1 } }

    /// The groups of CPUs sharing one L3 cache, ordered by their lowest CPU; empty when no L3 is exposed.
    public var l3Groups: [[Int]] { Self.distinctGroups(cpus.compactMap(\.l3CPUs)) }

    /// The distance between two nodes, if both are known.
    public func distance(from source: Int, to destination: Int) -> Int? {
        guard let row = nodes.first(where: { $0.id == source }),
              let column = nodes.firstIndex(where: { $0.id == destination }),
              column < row.distances.count
        else { return nil }
        return row.distances[column]
    }

    private static func distinctGroups(_ groups: [[Int]]) -> [[Int]] {
        Array(Set(groups)).sorted { ($0.first ?? .max) < ($1.first ?? .max) }
    }
}

// MARK: - Reading /sys

extension Topology {
    /// Reads the topology under `sysfsRoot` (a copy of /sys in tests).
    ///
    /// Only `devices/system/cpu/online` is required; missing per-CPU topology, cache or node files
    /// degrade to "each CPU its own core in package 0", "no L3 known" and "one node, NUMA not exposed".
    public static func read(sysfsRoot: String = "/sys") throws -> Topology {
        let cpuRoot = sysfsRoot + "/devices/system/cpu"
        let nodeRoot = sysfsRoot + "/devices/system/node"
        guard let onlineText = readFile(cpuRoot + "/online") else {
            throw IPCError.setup("topology: cannot read \(cpuRoot)/online")
        }
        guard let online = Affinity.parseCPUList(onlineText), !online.isEmpty else {
            throw IPCError.setup("topology: cannot parse \(cpuRoot)/online: \"\(onlineText.trimmingWhitespace())\"")
        }
        let onlineSet = Set(online)
        // Lists in /sys can name offline CPUs (e.g. SMT siblings switched off); keep only online ones.
        func onlineList(_ path: String) -> [Int]? {
            guard let text = readFile(path), let list = Affinity.parseCPUList(text) else { return nil }
            return list.filter(onlineSet.contains).sorted()
        }

        var nodes = readNodes(nodeRoot, onlineList: onlineList)
        let numaExposed = !nodes.isEmpty
        if !numaExposed { nodes = [Node(id: 0, cpus: online.sorted(), distances: [10])] }

        let cpus = online.sorted().map { id in
            let directory = "\(cpuRoot)/cpu\(id)"
            let siblings = onlineList(directory + "/topology/core_cpus_list")
                ?? onlineList(directory + "/topology/thread_siblings_list")
            return CPU(
                id: id,
                packageID: readInt(directory + "/topology/physical_package_id") ?? 0,
                coreID: readInt(directory + "/topology/core_id") ?? id,
                siblings: siblings.flatMap { $0.contains(id) ? $0 : nil } ?? [id],
                l3CPUs: readL3(directory + "/cache", onlineList: onlineList),
                node: nodes.first { $0.cpus.contains(id) }?.id)
        }
        return Topology(cpus: cpus, nodes: nodes, numaExposed: numaExposed)
    }

    /// The `node<N>` directories (ids from `node/online` when present), with CPUs and distances.
    private static func readNodes(_ nodeRoot: String, onlineList: (String) -> [Int]?) -> [Node] {
        let ids: [Int]
        if let text = readFile(nodeRoot + "/online"), let list = Affinity.parseCPUList(text) {
            ids = list
        } else {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: nodeRoot)) ?? []
            ids = entries.compactMap { $0.hasPrefix("node") ? Int($0.dropFirst(4)) : nil }.sorted()
        }
        return ids.compactMap { id in
            let directory = "\(nodeRoot)/node\(id)"
            guard let cpus = onlineList(directory + "/cpulist") else { return nil }
            let distances = readFile(directory + "/distance").map { $0.split(whereSeparator: \.isWhitespace).compactMap { Int($0) } }
            return Node(id: id, cpus: cpus, distances: distances ?? [])
        }
    }

    /// `shared_cpu_list` of the first `cache/index*` whose `level` is 3.
    private static func readL3(_ cacheDirectory: String, onlineList: (String) -> [Int]?) -> [Int]? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: cacheDirectory)) ?? []
        let indexes = entries.compactMap { $0.hasPrefix("index") ? Int($0.dropFirst(5)) : nil }.sorted()
        for index in indexes {
            let directory = "\(cacheDirectory)/index\(index)"
            if readInt(directory + "/level") == 3 { return onlineList(directory + "/shared_cpu_list") }
        }
        return nil
    }

    private static func readFile(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    private static func readInt(_ path: String) -> Int? {
        readFile(path).flatMap { Int($0.trimmingWhitespace()) }
    }
}

// MARK: - Description

extension Topology: CustomStringConvertible {
    /// A few lines for `ipcbench topology`: CPUs, cores, SMT, L3 groups, nodes and their distances.
    public var description: String {
        var lines: [String] = []
        let coreCount = cores.count
        let packageCount = packages.count
        lines.append(
            "CPUs: \(cpus.count) online (\(Self.formatCPUList(onlineCPUs))), \(coreCount) physical core\(coreCount == 1 ? "" : "s")"
                + " in \(packageCount) package\(packageCount == 1 ? "" : "s")")
        if smtActive {
            let threads = cores.map(\.count).max() ?? 1
            let example = cores.first { $0.count > 1 } ?? []
            lines.append("SMT: on, up to \(threads) threads per core (e.g. CPUs \(Self.formatCPUList(example)) share a core)")
        } else {
            lines.append("SMT: off or absent (one thread per core)")
        }
        let l3 = l3Groups
        lines.append(
            l3.isEmpty
                ? "L3: not exposed by the kernel"
                : "L3: \(l3.count) cache\(l3.count == 1 ? "" : "s"), shared by " + l3.map(Self.formatCPUList).joined(separator: " | "))
        if !numaExposed {
            lines.append("NUMA: not exposed (treated as one node with every CPU)")
            return lines.joined(separator: "\n")
        }
        lines.append("NUMA: \(nodes.count) node\(nodes.count == 1 ? "" : "s")")
        for node in nodes {
            lines.append("  node \(node.id): CPUs " + (node.cpus.isEmpty ? "none (memory only)" : Self.formatCPUList(node.cpus)))
        }
        // Distance matrix laid out like `numactl --hardware`.
        func pad(_ text: String) -> String { String(repeating: " ", count: max(0, 4 - text.count)) + text }
        lines.append("  distances:")
        lines.append("  node" + nodes.map { pad("\($0.id)") }.joined())
        for node in nodes {
            lines.append("  " + pad("\(node.id):") + node.distances.map { pad("\($0)") }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// The kernel's list format back from ids: [0, 1, 2, 3, 8] → "0-3,8".
    public static func formatCPUList(_ cpus: [Int]) -> String {
        var ranges: [String] = []
        var index = 0
        let sorted = Array(Set(cpus)).sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            ranges.append(index == end ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return ranges.joined(separator: ",")
    }
}
