import Foundation
import Glibc
import IPCBench
import Testing

/// The shared-memory ring (shm-posix, shm-sysv, mmap-file): every copy path and notification moves
/// 10,000 verified messages per cell between real processes in both modes; a two-slot ring wraps on
/// every message without a torn or stale slot; and no segment, semaphore set, name or file is left
/// behind, also when a worker is SIGKILLed mid-run.
@Suite("Shared-memory ring mechanisms move verified data and leave nothing behind", .serialized)
struct SharedRingTests {
    static let variants = SharedRingVariant.all.map(\.name)

    static let sweep = [16, 4096]

    /// Verifying a message costs ~60× more in a debug build (~6 ms per MiB here), so 1 MiB messages
    /// and the large-message variants of every segment kind run only when the tests are built
    /// optimised (`swift test -c release`).
    #if DEBUG
    static let largeSizes = [65536]
    static let largeMechanisms = ["shm-posix"]
    #else
    static let largeSizes = [65536, 1 << 20]
    static let largeMechanisms = ["shm-posix", "shm-sysv", "mmap-file"]
    #endif

    /// Runs cells of `mechanism` (a registry instance or one with a smaller ring) with exact counts.
    static func run(
        _ mechanism: any Mechanism, variants: [String], modes: [Mode] = Mode.allCases, sizes: [Int], messages: Int = 10_000,
        fault: InjectedFault? = nil
    ) -> [CellOutcome] {
        let configuration = RunConfiguration(
            mechanisms: [mechanism], modes: modes, variants: variants, sizes: sizes, touch: .verify, placement: TestSupport.placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: messages, warmupMessages: 100, limits: TestSupport.limits, fault: fault)
        return SuiteRunner.run(configuration) { _, _, _ in }
    }

    static func expectVerified(_ outcomes: [CellOutcome], count: Int, messages: Int = 10_000) {
        #expect(outcomes.count == count)
        for outcome in outcomes {
            let cell = outcome.cell
            let label = "\(cell.mechanism.id) \(cell.variant) \(cell.mode) \(cell.messageBytes)"
            #expect(outcome.status == .ok, "\(label): \(outcome.status.text)")
            #expect(outcome.messages == UInt64(messages), "\(label)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(label)")
            #expect(cell.copies == (cell.variant.hasPrefix("in-place/") ? 0 : 2), "\(label)")
            switch cell.mode {
            case .latency: #expect((outcome.halfRoundTrip?.p50 ?? 0) > 0, "\(label)")
            case .throughput: #expect((outcome.bytesPerSecond ?? 0) > 0, "\(label)")
            }
        }
    }

    // MARK: - Moving data

    @Test("Every variant of shm-posix moves 10,000 verified messages per cell", arguments: SharedRingTests.variants)
    func everyVariantMovesVerifiedMessages(variant: String) throws {
        let leftovers = RingLeftovers()
        let outcomes = Self.run(POSIXSharedMemoryMechanism(), variants: [variant], sizes: Self.sweep)
        Self.expectVerified(outcomes, count: 2 * Self.sweep.count)
        leftovers.expectNone(createdBy: getpid())
    }

    @Test("shm-sysv, mmap-file and shm-memfd move 10,000 verified messages per cell, every variant", arguments: ["shm-sysv", "mmap-file", "shm-memfd"])
    func otherSegmentsMoveVerifiedMessages(mechanism: String) throws {
        let leftovers = RingLeftovers()
        let outcomes = Self.run(MechanismRegistry.mechanism(id: mechanism)!, variants: Self.variants, sizes: [16])
        Self.expectVerified(outcomes, count: 2 * Self.variants.count)
        leftovers.expectNone(createdBy: getpid())
    }

    @Test("Large messages: copy and in-place, blocking and spinning, every segment kind", arguments: SharedRingTests.largeMechanisms)
    func largeMessages(mechanism: String) throws {
        let leftovers = RingLeftovers()
        #if DEBUG
        let variants = ["in-place/semaphore"]
        #else
        let variants = mechanism == "shm-posix" ? ["copy/semaphore", "in-place/semaphore", "in-place/spin"] : ["in-place/semaphore"]
        #endif
        let outcomes = Self.run(MechanismRegistry.mechanism(id: mechanism)!, variants: variants, sizes: Self.largeSizes)
        Self.expectVerified(outcomes, count: 2 * variants.count * Self.largeSizes.count)
        leftovers.expectNone(createdBy: getpid())
    }

    @Test("The spinning ring's one-slot hand-off: verified on one CPU (where it must yield) and across two, closed and open loop")
    func spinPingPong() throws {
        let leftovers = RingLeftovers()
        let cpus = Affinity.allowedCPUs()
        var configuration = RunConfiguration(
            mechanisms: [POSIXSharedMemoryMechanism()], modes: [.latency], variants: ["in-place/spin"], sizes: [16, 200], touch: .verify,
            placement: Placement(producerCPU: cpus[0], consumerCPU: cpus[0]), repetitions: 1, durationSeconds: 0,
            maximumMessages: 2_000, warmupMessages: 100, limits: TestSupport.limits)
        if cpus.count >= 2 { configuration.placements.append(Placement(producerCPU: cpus[0], consumerCPU: cpus[1])) }
        let closedLoop = SuiteRunner.run(configuration) { _, _, _ in }
        Self.expectVerified(closedLoop, count: 2 * configuration.placements.count, messages: 2_000)
        for outcome in closedLoop {
            // One-way ends when the consumer has answered, within the round trip it is part of.
            let oneWay = try #require(outcome.oneWay?.p50)
            let roundTrip = try #require(outcome.halfRoundTrip?.p50)
            #expect(oneWay > 0 && oneWay < 4 * roundTrip, "one-way \(oneWay) ns vs RTT/2 \(roundTrip) ns")
            if outcome.cell.placement.producerCPU == outcome.cell.placement.consumerCPU {
                // On one CPU only the peer can end a wait, so the spinner yields after every empty
                // poll; one that spins out its bound first (50 µs) or a time slice costs that per hand-off.
                #expect(roundTrip < 25_000, "same-CPU spin ping-pong: \(roundTrip) ns RTT/2 p50; the waiter did not yield at once")
            }
        }
        configuration.pacedRate = 20_000
        configuration.durationSeconds = 0.1
        configuration.maximumMessages = 1_000_000
        configuration.sizes = [16]
        for outcome in SuiteRunner.run(configuration) { _, _, _ in } {
            #expect(outcome.status == .ok, "\(outcome.status.text)")
            // 0.1 s at 20,000/s: the schedule, not the channel, sets the count.
            #expect((1_500...2_100).contains(outcome.messages), "paced messages \(outcome.messages)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0)
        }
        leftovers.expectNone(createdBy: getpid())
    }

    @Test("A two-slot ring wraps on every message with no torn or stale slot, every variant")
    func tinyRingWrapsAround() throws {
        let leftovers = RingLeftovers()
        // Streaming keeps the producer a slot ahead, writing the slot just released while the consumer
        // reads the other: an early release or a missed wake-up shows as corrupt, lost or a hang.
        let outcomes = Self.run(POSIXSharedMemoryMechanism(maximumSlots: 2), variants: Self.variants, modes: [.throughput], sizes: [4096])
        Self.expectVerified(outcomes, count: Self.variants.count)
        let large = Self.run(SysVSharedMemoryMechanism(maximumSlots: 2), variants: ["in-place/futex"], modes: [.throughput], sizes: [65536])
        Self.expectVerified(large, count: 1)
        leftovers.expectNone(createdBy: getpid())
    }

    @Test("The in-place consumer sees the slot itself: a corrupted byte is detected")
    func inPlaceCorruptionIsDetected() {
        let outcome = Self.run(POSIXSharedMemoryMechanism(), variants: ["in-place/semaphore"], modes: [.throughput], sizes: [4096], messages: 2_000, fault: .corrupt)[0]
        guard case .failed = outcome.status else {
            Issue.record("a corrupted in-place message was not detected: \(outcome.status.text)")
            return
        }
        #expect(outcome.corrupt == 1)
    }

    // MARK: - Layout and variants

    @Test("Slots are whole cache lines sized to fit the message; one slot for ping-pong, else 8 to 2 MiB, a bounded power of two")
    func ringLayout() {
        for size in [16, 64, 65, 100, 4096, 65536, 100_000, 1 << 20, 3 << 20] {
            for mode in Mode.allCases {
                let layout = RingLayout(messageBytes: size, mode: mode)
                #expect(layout.messageCapacity >= size && layout.slotBytes % 64 == 0 && layout.messageCapacity - size < 64, "\(size)")
                #expect(layout.slotCount & (layout.slotCount - 1) == 0, "\(size)")
                if mode == .latency {
                    #expect(layout.slotCount == RingLayout.latencySlots, "\(size)")
                } else {
                    #expect(layout.slotCount >= RingLayout.minimumSlots && layout.slotCount <= RingLayout.defaultMaximumSlots, "\(size)")
                    #expect(layout.slotCount == RingLayout.minimumSlots || layout.ringBytes > RingLayout.targetRingBytes / 2 || layout.slotCount == RingLayout.defaultMaximumSlots, "\(size)")
                }
                #expect(layout.ringCount == (mode == .latency ? 2 : 1))
                #expect(layout.segmentBytes == 4096 + layout.slotCount * layout.slotBytes) // the rings share their slots
            }
        }
        #expect(RingLayout(messageBytes: 1 << 20, mode: .throughput).slotCount == 8)
        #expect(RingLayout(messageBytes: 4096 - RingLayout.slotHeaderBytes, mode: .throughput).slotCount == 512)
        #expect(RingLayout(messageBytes: 4096, mode: .throughput).slotCount == 256)
        // A small message shares its slot's one cache line with the stamp the spinning variant polls.
        #expect(RingLayout(messageBytes: 48, mode: .latency).slotBytes == 64)
        #expect(RingLayout(messageBytes: 49, mode: .latency).slotBytes == 128)
        #expect(RingLayout(messageBytes: 16, mode: .throughput).slotCount == RingLayout.defaultMaximumSlots)
        #expect(RingLayout(messageBytes: 4096, mode: .throughput, maximumSlots: 3).slotCount == 2)
    }

    @Test("Variants: small default suites, every variant reachable, copies 2 / 0", arguments: ["shm-posix", "shm-sysv", "mmap-file", "shm-memfd"])
    func variantLists(mechanism: String) throws {
        let ring = try #require(MechanismRegistry.mechanism(id: mechanism))
        for mode in Mode.allCases {
            let defaults = ring.variants(for: mode)
            let optional = ring.optionalVariants(for: mode)
            #expect((defaults.contains("in-place/semaphore") || mechanism == "shm-memfd") && defaults.contains { $0.hasPrefix("in-place/") } && defaults.count <= 3)
            #expect(Set(defaults).isDisjoint(with: optional))
            #expect(Set(defaults + optional) == Set(Self.variants))
        }
        #expect(ring.copies(for: "copy/semaphore") == 2 && ring.copies(for: "copy/spin") == 2)
        #expect(Self.variants.filter { $0.hasPrefix("in-place/") }.allSatisfy { ring.copies(for: $0) == 0 })
        #expect(ring.messageLimit().map { $0.bytes >= 1 << 20 } ?? true, "\(String(describing: ring.messageLimit()))")
    }

    // MARK: - Killed workers

    @Test(
        "A worker SIGKILLed mid-run fails its row and leaves no segment, semaphore set, name or file",
        arguments: [
            ("shm-posix", "in-place/semaphore", "consumer"), ("shm-posix", "in-place/eventfd", "producer"),
            ("shm-sysv", "in-place/sysv-sem", "consumer"), ("mmap-file", "in-place/spin", "producer"),
            ("shm-memfd", "in-place/eventfd", "consumer"),
        ])
    func killedWorkerLeavesNothing(mechanism: String, variant: String, victim: String) throws {
        let leftovers = RingLeftovers()
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = directory + "/r.csv"
        var parent: pid_t = 0
        var killed = false
        var sawSegment = false
        let result = try TestSupport.runCLI(
            [
                "run", "--placements", "cross-cpu", "--mechanisms", mechanism, "--variants", variant, "--modes", "throughput", "--sizes", "4K", "--duration", "5",
                "--repetitions", "1", "--touch", "verify", "--out", csv, "--quiet",
            ],
            environment: ["TMPDIR": directory]
        ) { pid in
            parent = pid
            var workers: [(pid: pid_t, commandLine: String)] = []
            guard TestSupport.waitFor(seconds: 10, {
                workers = TestSupport.children(of: pid)
                return workers.count == 2
            }) else { return }
            usleep(500_000)  // well into the timed loop: set-up and warm-up take far less
            // Read again: a worker caught between posix_spawn and exec still shows the parent's command line.
            workers = TestSupport.children(of: pid)
            sawSegment = RingLeftovers.segmentsExist(mechanism: mechanism, createdBy: pid, workspaceBase: directory)
            if variant.hasSuffix("/sysv-sem") {
                sawSegment = sawSegment && !Set(RingLeftovers.ringSemaphoreSets()).subtracting(leftovers.semaphoreSetsBefore).isEmpty
            }
            guard let worker = workers.first(where: { $0.commandLine.contains("\"role\":\"\(victim)\"") }) else { return }
            killed = kill(worker.pid, SIGKILL) == 0
        }
        #expect(killed, "no \(victim) worker was found to kill")
        #expect(sawSegment, "the ring's segment (or semaphore set) was not found while the cell ran")
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        let status = rows.first?["status"] ?? ""
        #expect(rows.count == 1 && status.hasPrefix("failed: ") && status.contains("\(victim) was killed by SIGKILL"), "\(status)")
        #expect(!RingLeftovers.segmentsExist(mechanism: mechanism, createdBy: parent, workspaceBase: directory))
        leftovers.expectNone(createdBy: parent)
        #expect(TestSupport.entries(in: directory).sorted() == ["r.csv", "r.metadata.json"])
    }
}

/// What the ring mechanisms could leave behind: POSIX shm names in /dev/shm, System V segments
/// (by creator pid) and semaphore sets (new since the snapshot, of the ring's shape).
struct RingLeftovers {
    let semaphoreSetsBefore: Set<Int32>

    init() {
        semaphoreSetsBefore = Set(Self.ringSemaphoreSets())
    }

    func expectNone(createdBy pid: pid_t) {
        let names = TestSupport.entries(in: "/dev/shm").filter { $0.hasPrefix("ipcbench-\(pid)-") }
        #expect(names.isEmpty, "left in /dev/shm: \(names)")
        let segments = Self.sysVSegments(createdBy: pid)
        #expect(segments.isEmpty, "System V segments left: \(segments)")
        let sets = Set(Self.ringSemaphoreSets()).subtracting(semaphoreSetsBefore)
        #expect(sets.isEmpty, "System V semaphore sets left: \(sets)")
    }

    /// Whether the cell's segment exists now (checked while the cell runs).
    static func segmentsExist(mechanism: String, createdBy pid: pid_t, workspaceBase: String) -> Bool {
        switch mechanism {
        case "shm-posix":
            return TestSupport.entries(in: "/dev/shm").contains { $0.hasPrefix("ipcbench-\(pid)-") }
        case "shm-sysv":
            return !sysVSegments(createdBy: pid).isEmpty
        case "shm-memfd":
            // No name anywhere: the memfd exists while a worker maps it.
            return TestSupport.children(of: pid).contains { worker in
                SystemFacts.readWhole("/proc/\(worker.pid)/maps")?.contains("/memfd:ipcbench-ring") == true
            }
        default:
            return TestSupport.entries(in: workspaceBase).contains { entry in
                entry.hasPrefix("ipcbench-") && TestSupport.entries(in: workspaceBase + "/" + entry).contains("ring.shm")
            }
        }
    }

    /// Ids from /proc/sysvipc/shm (key shmid perms size cpid …) whose creator is `pid`.
    static func sysVSegments(createdBy pid: pid_t) -> [Int32] {
        rows("/proc/sysvipc/shm").compactMap { fields in
            guard fields.count > 4, let id = Int32(fields[1]), pid_t(fields[4]) == pid else { return nil }
            return id
        }
    }

    /// Ids from /proc/sysvipc/sem (key semid perms nsems uid …) of this user with mode 0600 and 2 or 4
    /// semaphores: the shape of a ring's semaphore set.
    static func ringSemaphoreSets() -> [Int32] {
        rows("/proc/sysvipc/sem").compactMap { fields in
            guard fields.count > 4, let id = Int32(fields[1]), fields[2] == "600", ["2", "4"].contains(fields[3]),
                  uid_t(fields[4]) == getuid()
            else { return nil }
            return id
        }
    }

    private static func rows(_ path: String) -> [[String]] {
        guard let text = SystemFacts.readWhole(path) else { return [] }
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
    }
}
