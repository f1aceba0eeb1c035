import CIPCShim
import Glibc

/// `shm-huge`: the ring in System V shared memory on huge pages from the kernel's reserved pool
/// (shmget with SHM_HUGETLB). A 2 MiB page (on x86-64) is one TLB entry where 4 KiB pages take 512,
/// and there are 512 times fewer pages to fault in and to walk. Otherwise it is `shm-sysv`: created
/// under a pid-tagged key, attached by id, removed with IPC_RMID.
///
/// The pool is empty unless an administrator reserves pages (vm.nr_hugepages), so by default the
/// rows are `unavailable:` with the sysctl to set. A user needs CAP_IPC_LOCK or membership of the
/// group vm.hugetlb_shm_group names.
public struct HugePageSegment: SegmentBackend {
    public let id = "shm-huge"
    public var summary: String {
        let size = HugePagePool.current().map { " of \(ByteSize.format($0.pageBytes))" } ?? ""
        return "ring of slots in System V shared memory on huge pages\(size) (shmget SHM_HUGETLB, from the vm.nr_hugepages pool)"
    }
    public let defaultVariants = ["in-place/spin"]

    public init() {}

    public func unavailableReason() -> String? {
        if let reason = SysVSharedMemorySegment().unavailableReason() { return reason }
        guard let pool = HugePagePool.current() else {
            return "no huge page pool: /proc/meminfo shows no HugePages_Total (kernel without CONFIG_HUGETLBFS?)"
        }
        return pool.unavailableReason
    }

    /// The free pages of the pool not promised to others, and System V's own bounds. (An empty pool
    /// bounds nothing here: the rows are unavailable, saying why.)
    public func sizeBounds() -> [(bytes: Int, source: String)] {
        let pool = HugePagePool.current().flatMap { $0.availablePages > 0 ? $0 : nil }.map { pool in
            [(pool.availableBytes, "\(pool.availablePages) free huge pages of \(ByteSize.format(pool.pageBytes)) (HugePages_Free − HugePages_Rsvd in /proc/meminfo, and surplus ones vm.nr_overcommit_hugepages allows; raise vm.nr_hugepages)")]
        } ?? []
        return pool + SysVSharedMemorySegment.systemVBounds()
    }

    /// The segment is rounded up to whole huge pages: the kernel maps whole ones anyway, and binding
    /// part of a huge page to a NUMA node (`--memory-node`) would have to split it, which it refuses.
    public func createSegment(bytes: Int, workspace: String, memoryNode: Int?) throws -> CreatedSegment {
        let page = HugePagePool.current()?.pageBytes ?? (2 << 20)
        let rounded = (bytes + page - 1) / page * page
        do {
            return try SysVSharedMemorySegment.create(bytes: rounded, flags: SHM_HUGETLB, workspace: workspace, memoryNode: memoryNode)
        } catch let IPCError.system(call, code, context) where call == "shmget" && (code == EPERM || code == ENOMEM) {
            let why = code == EPERM
                ? "huge-page shared memory needs CAP_IPC_LOCK, membership of the group vm.hugetlb_shm_group (now \(SystemFacts.readInt("/proc/sys/vm/hugetlb_shm_group") ?? 0)), or an RLIMIT_MEMLOCK of at least \(rounded) bytes (ulimit -l)"
                : "the huge page pool has too few free pages for \(rounded) bytes (raise vm.nr_hugepages)"
            throw IPCError.setup("\(call)\(context.isEmpty ? "" : " " + context): \(String(cString: strerror(code))): \(why)")
        }
    }

    public func mapSegment(_ rendezvous: Rendezvous, bytes: Int) throws -> SegmentMapping {
        try SysVSharedMemorySegment.map(rendezvous, bytes: bytes)
    }

    public func removeSegments(_ rendezvous: Rendezvous) { SysVSharedMemorySegment().removeSegments(rendezvous) }
}

/// The kernel's pool of reserved huge pages of the default size (/proc/meminfo).
struct HugePagePool: Equatable {
    var totalPages: Int
    var freePages: Int
    var reservedPages: Int
    var pageBytes: Int
    /// Pages the kernel may add on demand beyond the pool (vm.nr_overcommit_hugepages), and those it
    /// has added so far (HugePages_Surp).
    var overcommitPages = 0
    var surplusPages = 0

    /// Free pages nobody has reserved yet, and surplus pages still allowed.
    var availablePages: Int { max(0, freePages - reservedPages) + max(0, overcommitPages - surplusPages) }
    var availableBytes: Int { availablePages * pageBytes }

    var unavailableReason: String? {
        if totalPages == 0 && overcommitPages == 0 {
            return "no huge pages are reserved (HugePages_Total is 0 in /proc/meminfo): reserve some, e.g. sysctl -w vm.nr_hugepages=64 for 64 × \(ByteSize.format(pageBytes)), as root"
        }
        if availablePages == 0 {
            return "all \(totalPages) reserved huge pages are in use (HugePages_Free − HugePages_Rsvd is 0 in /proc/meminfo): raise vm.nr_hugepages"
        }
        return nil
    }

    static func current() -> HugePagePool? {
        guard var pool = SystemFacts.read("/proc/meminfo").flatMap(parse(meminfo:)) else { return nil }
        pool.overcommitPages = SystemFacts.readInt("/proc/sys/vm/nr_overcommit_hugepages") ?? 0
        return pool
    }

    /// The pool as /proc/meminfo describes it, or nil when it has no huge page lines.
    static func parse(meminfo: String) -> HugePagePool? {
        var values: [String: Int] = [:]
        for line in meminfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let value = Int(fields[1]) else { continue }
            values[String(fields[0].dropLast())] = fields.count > 2 && fields[2] == "kB" ? value * 1024 : value
        }
        guard let total = values["HugePages_Total"], let free = values["HugePages_Free"], let size = values["Hugepagesize"], size > 0 else {
            return nil
        }
        return HugePagePool(
            totalPages: total, freePages: free, reservedPages: values["HugePages_Rsvd"] ?? 0, pageBytes: size,
            surplusPages: values["HugePages_Surp"] ?? 0)
    }
}

public typealias HugePageSharedMemoryMechanism = SharedRingMechanism<HugePageSegment>
