import CNUMA
import Glibc

/// NUMA memory placement through libnuma: bind a shared region to a node before it is first
/// touched, and check afterwards where its pages really are.
///
/// libnuma is loaded at run time (CNUMA's dlopen shim), so the tool starts and runs everything else
/// where libnuma.so.1 is missing; `unavailableReason` then says why placement is impossible.
public enum NUMA {
    public static let libraryName = "libnuma.so.1"

    /// Test-only (not in --help): the library to dlopen instead of libnuma.so.1. Tests set a name that
    /// does not exist to simulate a machine without libnuma, through the real dlopen failure path.
    static let libraryOverrideVariable = "IPCBENCH_TEST_LIBNUMA"

    /// libnuma's functions, or why they could not be had.
    private static let loaded: Result<ipcb_numa_api, LoadFailure> = {
        let library = getenv(libraryOverrideVariable).map { String(cString: $0) } ?? libraryName
        var error = [CChar](repeating: 0, count: 512)
        guard let api = ipcb_numa_load(library, &error, error.count) else {
            let text = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failure(LoadFailure(reason: "libnuma could not be loaded (\(text))"))
        }
        guard api.pointee.numa_available() >= 0 else {
            return .failure(LoadFailure(reason: "the kernel has no NUMA support (libnuma's numa_available() < 0)"))
        }
        return .success(api.pointee)
    }()

    private struct LoadFailure: Error {
        let reason: String
    }

    /// Why NUMA memory placement is impossible here (libnuma missing, kernel without NUMA), or nil.
    public static var unavailableReason: String? {
        if case let .failure(failure) = loaded { return failure.reason }
        return nil
    }

    public static var isAvailable: Bool { unavailableReason == nil }

    private static func api() throws -> ipcb_numa_api {
        switch loaded {
        case let .success(api): return api
        case let .failure(failure): throw IPCError.setup("NUMA memory placement is unavailable: \(failure.reason)")
        }
    }

    /// Nodes that have memory this process may use, as the kernel reports them.
    public static var memoryNodes: [Int] {
        guard let api = try? api(), let allowed = api.numa_get_mems_allowed() else { return [] }
        defer { api.numa_bitmask_free(allowed) }
        return (0...Int(api.numa_max_node())).filter { api.numa_bitmask_isbitset(allowed, UInt32($0)) != 0 }
    }

    /// The node a CPU belongs to, or nil.
    public static func node(ofCPU cpu: Int) -> Int? {
        guard let api = try? api() else { return nil }
        let node = api.numa_node_of_cpu(Int32(cpu))
        return node >= 0 ? Int(node) : nil
    }

    /// A node mask as the mempolicy calls take it: 1024 bits, and maxnode one more (the kernel reads
    /// maxnode - 1 bits, which libnuma accounts for the same way).
    private static let maskWords = 16
    private static let maxNode = UInt(maskWords * UInt.bitWidth + 1)

    private static func mask(_ node: Int) throws -> [UInt] {
        guard (0..<(maskWords * UInt.bitWidth)).contains(node) else { throw IPCError.setup("NUMA node \(node) is out of range") }
        var words = [UInt](repeating: 0, count: maskWords)
        words[node / UInt.bitWidth] |= 1 << UInt(node % UInt.bitWidth)
        return words
    }

    /// Binds the pages of `region` to `node` (MPOL_BIND): pages faulted in from now on come from it.
    /// Call it on a fresh mapping, before anything touches it. On shared memory (POSIX and System V
    /// shm, memfd) this sets the object's shared policy, which faults through any mapping follow.
    public static func bind(_ region: UnsafeMutableRawBufferPointer, toNode node: Int) throws {
        let api = try api()
        guard memoryNodes.contains(node) else {
            throw IPCError.setup("NUMA node \(node) does not exist or has no memory; nodes with memory: \(memoryNodes)")
        }
        let nodes = try mask(node)
        let result = api.mbind(region.baseAddress!, UInt(region.count), Int32(IPCB_MPOL_BIND), nodes, maxNode,
                               UInt32(IPCB_MPOL_MF_STRICT | IPCB_MPOL_MF_MOVE))
        guard result == 0 else { throw IPCError.lastSystemError("mbind", "node \(node)") }
    }

    /// Runs `body` with this thread's own memory policy bound to `node`, then restores the policy it
    /// had. Page cache of regular files follows the faulting task's policy, not the mapping's.
    public static func withTaskPolicy<Result>(boundTo node: Int, _ body: () throws -> Result) throws -> Result {
        let api = try api()
        var savedMode: Int32 = 0
        var savedNodes = [UInt](repeating: 0, count: maskWords)
        guard api.get_mempolicy(&savedMode, &savedNodes, maxNode, nil, 0) == 0 else {
            throw IPCError.lastSystemError("get_mempolicy")
        }
        guard api.set_mempolicy(Int32(IPCB_MPOL_BIND), try mask(node), maxNode) == 0 else {
            throw IPCError.lastSystemError("set_mempolicy(MPOL_BIND)", "node \(node)")
        }
        defer {
            // Left bound, every later allocation of this thread would come from `node`: never carry on.
            if api.set_mempolicy(savedMode, savedMode == Int32(IPCB_MPOL_DEFAULT) ? nil : savedNodes, maxNode) != 0 {
                fatalError("set_mempolicy could not restore this thread's memory policy (errno \(errno))")
            }
        }
        return try body()
    }

    /// Where the (touched) pages of `region` are: node → page count, from move_pages in query mode.
    /// Untouched pages are not counted.
    public static func pageNodes(of region: UnsafeRawBufferPointer) throws -> [Int: Int] {
        let api = try api()
        guard let base = region.baseAddress, region.count > 0 else { return [:] }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) & ~(pageSize - 1)
        let count = (Int(bitPattern: base) + region.count - start + pageSize - 1) / pageSize
        var pages = (0..<count).map { UnsafeMutableRawPointer(bitPattern: start + $0 * pageSize) }
        var status = [Int32](repeating: -1, count: count)
        guard api.numa_move_pages(0, UInt(count), &pages, nil, &status, 0) == 0 else {
            throw IPCError.lastSystemError("move_pages", "query of \(count) pages")
        }
        var nodes: [Int: Int] = [:]
        for node in status where node >= 0 { nodes[Int(node), default: 0] += 1 }
        return nodes
    }
}
