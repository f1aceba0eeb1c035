import Foundation

/// The parsing and range rules of `ipcbench run`'s options (RunRequest), and the defaults the
/// command's help quotes.
public enum RunInput {
    public static let defaultSizes = "16,4K,64K,1M"
    public static let quickSizes = "64,64K"

    public static let crossCPU = "cross-cpu"
    /// The placements several pairs can spread from (PairLayout).
    public static let pairPlacements = [crossCPU, NamedPlacement.sameCPU.rawValue, NamedPlacement.unpinned.rawValue]

    /// This process holds a control pipe pair per worker and, while starting them, a few more
    /// descriptors each: raises the soft RLIMIT_NOFILE toward the hard one if it is short, and
    /// refuses the run up front if even that is not enough.
    public static func ensureDescriptors(forWorkers workers: Int, option: String) throws {
        let needed = rlim_t(32 + 6 * workers)
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < needed else { return }
        var raised = limit
        raised.rlim_cur = min(limit.rlim_max, needed)
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0, raised.rlim_cur >= needed { return }
        throw RunInputError("\(option): \(workers) workers need about \(needed) open descriptors in this process, but the limit is \(limit.rlim_cur) (hard \(limit.rlim_max); ulimit -n); raise it or run fewer")
    }

    /// `--pairs` or `--clients`: distinct counts in the order given.
    public static func parsePairs(_ text: String, option: String = "--pairs", noun: String = "pairs") throws -> [Int] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var counts: [Int] = []
        for item in items {
            guard let count = Int(item), pairsRange.contains(count) else {
                throw RunInputError("\(option): '\(item)' is not a number of \(noun); expected whole numbers from \(pairsRange.lowerBound) to \(pairsRange.upperBound), comma-separated, e.g. 1,2,4")
            }
            if !counts.contains(count) { counts.append(count) }
        }
        return counts
    }

    /// Named placements expanded on this machine's topology; unavailable ones stay in the list, marked.
    public static func parsePlacements(_ text: String, allowedCPUs: [Int]) throws -> [Placement] {
        let names = try parseList(text, option: "--placements", allowed: [crossCPU] + NamedPlacement.allCases.map(\.rawValue))
        let topology: Topology
        do {
            topology = try Topology.read()
        } catch {
            throw RunInputError("--placements: cannot read the CPU topology from /sys: \(error)")
        }
        return names.map { name in
            if name == crossCPU {
                guard allowedCPUs.count >= 2 else { return .unavailable(name: name, reason: "cross-cpu: only one CPU is allowed") }
                return Placement(name: name, producerCPU: allowedCPUs[0], consumerCPU: allowedCPUs[1])
            }
            switch expand(NamedPlacement(rawValue: name)!, topology: topology, allowedCPUs: allowedCPUs) {
            case let .pinned(placement), let .unpinned(placement): return placement
            case let .unavailable(reason): return .unavailable(name: name, reason: reason)
            }
        }
    }

    /// A node must exist (with memory) here; local and remote are resolved per cell, and a cell they
    /// cannot be resolved for is written as unavailable.
    public static func parseMemoryNode(_ text: String) throws -> MemoryNodeChoice {
        let nodes = MemoryNodeFacts.list(MemoryNodeFacts.nodesToOffer())
        guard let choice = MemoryNodeChoice(text) else {
            throw RunInputError("--memory-node '\(text)' is not a NUMA node; expected a node number (here: \(nodes)), local or remote")
        }
        if case let .node(node) = choice, !MemoryNodeFacts.nodesToOffer().contains(node) {
            throw RunInputError("--memory-node \(node): no such NUMA node with memory here; nodes: \(nodes) (or local, remote)")
        }
        return choice
    }

    public static func parseList(_ text: String, option: String, allowed: [String]) throws -> [String] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !items.isEmpty, !items.contains("") else { throw RunInputError("\(option) needs a comma-separated list; allowed: \(allowed.joined(separator: ", "))") }
        for item in items where !allowed.contains(item) {
            throw RunInputError("\(option): unknown value '\(item)'; allowed: \(allowed.joined(separator: ", "))")
        }
        return items
    }

    public static func parseMechanisms(_ text: String?) throws -> [any Mechanism] {
        guard let text else { return MechanismRegistry.all }
        return try parseList(text, option: "--mechanisms", allowed: MechanismRegistry.ids).map { MechanismRegistry.mechanism(id: $0)! }
    }

    public static let largestMessage = 1 << 30

    public static func parseSizes(_ text: String) throws -> [Int] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return try items.map { item in
            guard let bytes = ByteSize.parse(item) else {
                throw RunInputError("--sizes: '\(item)' is not a size; expected \(ByteSize.allowedForm)")
            }
            guard bytes >= MessageFormat.minimumMessageBytes, bytes <= largestMessage else {
                throw RunInputError("--sizes: \(item) is out of range; sizes run from \(MessageFormat.minimumMessageBytes) bytes (sequence number + timestamp) to 1G")
            }
            return bytes
        }
    }

    /// An explicit size no selected mechanism can carry is refused up front; in a sweep such cells are
    /// written as unavailable instead.
    public static func checkSizesFit(_ sizes: [Int], explicit: Bool, mechanisms: [any Mechanism]) throws {
        guard explicit else { return }
        for size in sizes {
            let limits = mechanisms.map { $0.messageLimit() }
            if limits.allSatisfy({ $0.map { size > $0.bytes } ?? false }) {
                let named = zip(mechanisms, limits).map { "\($0.id) ≤ \($1!.bytes) (\($1!.source))" }.joined(separator: "; ")
                throw RunInputError("--sizes: \(size) bytes is larger than every selected mechanism can carry: \(named)")
            }
        }
    }

    // The ranges of the numeric options, checked before any file is written (README: options table).
    public static let repetitionsRange = 1...1000
    /// 64 pairs are 128 worker processes and about 300 descriptors in this one.
    public static let pairsRange = 1...64
    public static let messagesRange = 1...1_000_000_000_000
    public static let warmupRange = 0...1_000_000_000
    /// 1 ms: shorter timed loops measure the clock, not the mechanism; 1 day: longer is a soak.
    public static let durationRange = 0.001...86_400.0
    public static let cellTimeoutRange = 0.1...86_400.0
    public static let spinThenBlockRange = 0.1...1_000_000.0
    public static let waitTimeoutRange = 0.001...3600.0

    public static func checkRange<Value: Comparable>(_ option: String, _ value: Value, _ range: ClosedRange<Value>, unit: String = "") throws {
        guard range.contains(value) else {
            throw RunInputError("\(option) \(value)\(unit) is out of range; allowed: \(range.lowerBound) to \(range.upperBound)\(unit)")
        }
    }

    public static func cpuListText(_ cpus: [Int]) -> String {
        cpus.isEmpty ? "none" : cpus.map(String.init).joined(separator: ",")
    }
}
