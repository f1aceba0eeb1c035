import CIPCShim
import Glibc

/// `--memory-node` for the shared-memory mechanisms: the parent (or, for memfd, the producer that
/// creates the memory) places a segment's pages on one NUMA node before anything else touches them;
/// each worker checks, after its own prefault, that every page really is there.
public enum MemoryBinding {
    /// On a fresh region nothing has touched yet: binds it to `node`, then runs `allocate` (e.g.
    /// posix_fallocate) and faults every page in while this thread's own policy is bound to the node
    /// too — shared memory follows the binding, a regular file's page cache the task's policy.
    static func populate(_ region: UnsafeMutableRawBufferPointer, onNode node: Int, allocate: () throws -> Void = {}) throws {
        try NUMA.bind(region, toNode: node)
        try NUMA.withTaskPolicy(boundTo: node) {
            try allocate()
            let fault = ipcb_prefault_writable(region.baseAddress!, region.count)
            guard fault == 0 else {
                throw IPCError.system(call: "madvise(MADV_POPULATE_WRITE)", errno: fault, context: "memory bound to NUMA node \(node)")
            }
        }
    }

    /// For objects reached through a descriptor (POSIX shm, a mapped file): without a node just runs
    /// `allocate`; with one, maps the object and populates it on the node around `allocate`.
    static func allocate(descriptor: Int32, bytes: Int, onNode node: Int?, context: String, _ allocate: () throws -> Void) throws {
        guard let node else { return try allocate() }
        let mapping = try SegmentMapping.map(descriptor: descriptor, bytes: bytes, context: context)
        defer { mapping.unmap() }
        try populate(UnsafeMutableRawBufferPointer(start: mapping.base, count: mapping.bytes), onNode: node, allocate: allocate)
    }

    /// Worker side, after prefault: every page of `region` must be on `node` (move_pages query).
    /// Returns the number of pages checked; throws the mismatch, which fails the cell.
    static func verify(_ region: UnsafeRawBufferPointer, onNode node: Int) throws -> Int {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: region.baseAddress) & ~(pageSize - 1)
        let total = (Int(bitPattern: region.baseAddress) + region.count - start + pageSize - 1) / pageSize
        if let problem = mismatch(node: node, pageNodes: try NUMA.pageNodes(of: region), totalPages: total) {
            throw IPCError.setup(problem)
        }
        return total
    }

    /// nil when all `totalPages` pages are on `node`, else what is wrong (for the row's status).
    public static func mismatch(node: Int, pageNodes: [Int: Int], totalPages: Int) -> String? {
        let onNode = pageNodes[node] ?? 0
        guard onNode != totalPages else { return nil }
        var elsewhere = pageNodes.filter { $0.key != node }.sorted { $0.key < $1.key }.map { "\($0.value) on node \($0.key)" }
        let missing = totalPages - pageNodes.values.reduce(0, +)
        if missing > 0 { elsewhere.append("\(missing) not present") }
        return "shared memory bound to NUMA node \(node), but move_pages finds only \(onNode) of its \(totalPages) pages there (\(elsewhere.joined(separator: ", ")))"
    }
}

/// An endpoint whose messages live in shared memory that `--memory-node` places: the region the
/// worker checks before its timed loop.
protocol SharedMemoryEndpoint: MessageEndpoint {
    var sharedRegion: UnsafeRawBufferPointer { get }
}
