import CNUMA
import Glibc

/// NUMA memory placement through libnuma: bind a shared region to a node before it is first
/// touched, and check afterwards where its pages really are.
public enum NUMA {
    /// False where the kernel has no NUMA support (libnuma's numa_available() < 0).
    public static var isAvailable: Bool { numa_available() >= 0 }

    /// Nodes that have memory, as the kernel reports them.
    public static var memoryNodes: [Int] {
        guard isAvailable else { return [] }
        guard let allowed = numa_get_mems_allowed() else { return [] }
        defer { numa_bitmask_free(allowed) }
        return (0...Int(numa_max_node())).filter { numa_bitmask_isbitset(allowed, UInt32($0)) != 0 }
    }

    /// The node a CPU belongs to, or nil.
    public static func node(ofCPU cpu: Int) -> Int? {
        guard isAvailable else { return nil }
        let node = numa_node_of_cpu(Int32(cpu))
        return node >= 0 ? Int(node) : nil
    }

    /// Binds the pages of `region` to `node` (MPOL_BIND): pages faulted in from now on come from it.
    /// Call it on a fresh mapping, before anything touches it.
    public static func bind(_ region: UnsafeMutableRawBufferPointer, toNode node: Int) throws {
        guard isAvailable else { throw IPCError.setup("NUMA is not available on this kernel (numa_available() < 0)") }
        guard memoryNodes.contains(node) else {
            throw IPCError.setup("NUMA node \(node) does not exist or has no memory; nodes with memory: \(memoryNodes)")
        }
        let mask = numa_allocate_nodemask()
        defer { numa_bitmask_free(mask) }
        numa_bitmask_setbit(mask, UInt32(node))
        let maxNode = UInt(mask!.pointee.size + 1)
        let result = mbind(region.baseAddress, UInt(region.count), Int32(MPOL_BIND), mask!.pointee.maskp, maxNode, UInt32(MPOL_MF_STRICT | MPOL_MF_MOVE))
        guard result == 0 else { throw IPCError.lastSystemError("mbind", "node \(node)") }
    }

    /// Where the (touched) pages of `region` are: node → page count, from move_pages in query mode.
    /// Untouched pages are not counted.
    public static func pageNodes(of region: UnsafeRawBufferPointer) -> [Int: Int] {
        guard isAvailable, let base = region.baseAddress, region.count > 0 else { return [:] }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) & ~(pageSize - 1)
        let count = (Int(bitPattern: base) + region.count - start + pageSize - 1) / pageSize
        var pages = (0..<count).map { UnsafeMutableRawPointer(bitPattern: start + $0 * pageSize) }
        var status = [Int32](repeating: -1, count: count)
        guard numa_move_pages(0, UInt(count), &pages, nil, &status, 0) == 0 else { return [:] }
        var nodes: [Int: Int] = [:]
        for node in status where node >= 0 { nodes[Int(node), default: 0] += 1 }
        return nodes
    }
}
