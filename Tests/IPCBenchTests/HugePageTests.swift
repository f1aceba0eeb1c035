import Foundation
import Glibc
@testable import IPCBench
import Testing

/// shm-huge: the ring on huge pages from the kernel's pool. With pages reserved it moves verified
/// data and returns them; without, its rows are unavailable with the sysctl to set. Which of the two
/// real-process tests runs depends on the machine (vm.nr_hugepages); the other reports its skip.
@Suite("Huge-page ring segments", .serialized)
struct HugePageTests {
    static let meminfo = """
        MemTotal:       32768000 kB
        HugePages_Total:      %d
        HugePages_Free:       %d
        HugePages_Rsvd:       %d
        HugePages_Surp:        0
        Hugepagesize:       2048 kB
        """

    static func pool(total: Int, free: Int, reserved: Int) -> HugePagePool? {
        HugePagePool.parse(meminfo: String(format: meminfo, total, free, reserved))
    }

    static var poolIsUsable: Bool { HugePagePool.current()?.unavailableReason == nil }

    @Test("/proc/meminfo's pool: empty, all taken, or pages to spare, each with what to do")
    func poolReading() throws {
        let empty = try #require(Self.pool(total: 0, free: 0, reserved: 0))
        #expect(empty.pageBytes == 2 << 20)
        #expect(empty.unavailableReason?.contains("sysctl -w vm.nr_hugepages=64 for 64 × 2 MiB") == true, "\(empty.unavailableReason ?? "")")
        let taken = try #require(Self.pool(total: 16, free: 4, reserved: 4))
        #expect(taken.availablePages == 0 && taken.unavailableReason?.contains("all 16 reserved huge pages are in use") == true)
        let spare = try #require(Self.pool(total: 64, free: 60, reserved: 8))
        #expect(spare.unavailableReason == nil && spare.availableBytes == 52 * (2 << 20))
        #expect(HugePagePool.parse(meminfo: "MemTotal: 1 kB\n") == nil)
        // No pool, but the kernel may add surplus pages on demand (vm.nr_overcommit_hugepages).
        var surplus = empty
        surplus.overcommitPages = 8
        #expect(surplus.unavailableReason == nil && surplus.availablePages == 8)
    }

    @Test("A segment larger than the pool's free pages is refused naming the sysctl to raise, and nothing is left")
    func poolTooSmall() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let pool = HugePagePool.current()
        let bytes = ((pool?.availablePages ?? 0) + 1) * (pool?.pageBytes ?? 2 << 20)
        do {
            let made = try HugePageSegment().createSegment(bytes: bytes, workspace: workspace.path, memoryNode: nil)
            HugePageSegment().removeSegments(Rendezvous(parameters: made.parameters))
            Issue.record("a segment of \(bytes) bytes was created from a pool of \(pool?.availablePages ?? 0) free pages")
        } catch {
            let text = "\(error)"
            #expect(text.contains("raise vm.nr_hugepages") || text.contains("vm.hugetlb_shm_group"), "\(text)")
        }
        RingLeftovers().expectNone(createdBy: getpid())
    }

    @Test("With pages reserved: both modes, blocking and spinning, 10,000 verified messages per cell; every page returned",
          .enabled(if: HugePageTests.poolIsUsable, "no huge pages reserved here (vm.nr_hugepages)"))
    func movesVerifiedData() throws {
        let freeBefore = HugePagePool.current()?.freePages
        let leftovers = RingLeftovers()
        let outcomes = SharedRingTests.run(
            SharedRingMechanism(HugePageSegment()), variants: ["in-place/spin", "copy/semaphore"], sizes: [64, 65536])
        SharedRingTests.expectVerified(outcomes, count: 8)
        leftovers.expectNone(createdBy: getpid())
        #expect(HugePagePool.current()?.freePages == freeBefore)
    }

    @Test("--memory-node 0 binds a huge-page ring whatever its size (whole huge pages: a part of one cannot be bound)",
          .enabled(if: HugePageTests.poolIsUsable && NUMA.memoryNodes.contains(0), "no huge pages reserved here, or no NUMA node 0"))
    func boundToANode() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/r.csv"
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "shm-huge", "--placements", "cross-cpu", "--sizes", "64,100K", "--repetitions", "1", "--messages", "200",
             "--warmup", "20", "--quiet", "--memory-node", "0", "--out", csv], environment: ["TMPDIR": scratch])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 4 && rows.allSatisfy { $0["status"] == "ok" && $0["memory_node"] == "0" }, "\(rows.map { $0["status"] ?? "" })")
    }

    @Test("Without pages: every row is unavailable, naming the sysctl, and the size check does not refuse the run",
          .enabled(if: !HugePageTests.poolIsUsable, "huge pages are reserved here, so the rows run"))
    func unavailableWithTheSysctl() throws {
        let outcomes = SharedRingTests.run(SharedRingMechanism(HugePageSegment()), variants: ["in-place/spin"], sizes: [1 << 20])
        #expect(outcomes.count == 2)
        for outcome in outcomes {
            #expect(outcome.status.text.hasPrefix("unavailable: ") && outcome.status.text.contains("vm.nr_hugepages"), "\(outcome.status.text)")
        }
        #expect(SharedRingMechanism(HugePageSegment()).messageLimit() == nil || Self.poolIsUsable)
    }
}
