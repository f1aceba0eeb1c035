/// Everything `ipcbench run` was asked to do, already validated.
public struct RunConfiguration: Sendable {
    public var mechanisms: [any Mechanism]
    public var modes: [Mode]
    /// Only these variants (nil: every variant of each mechanism).
    public var variants: [String]?
    /// `--wait`: every cell runs with each of these strategies (block alone by default).
    public var waits: [WaitStrategy] = [.block]
    /// `--spin-then-block` and `--wait-timeout`: the bounds of those strategies.
    public var spinThenBlockNanoseconds = WaitStrategy.defaultSpinNanoseconds
    public var waitTimeoutSeconds = WaitStrategy.defaultTimeoutSeconds
    public var sizes: [Int]
    /// What the producer writes into each message (default: every payload byte).
    public var produce = Produce.write
    public var touch: Touch
    /// Every cell runs at each of these placements (the initializer's `placement` alone by default).
    public var placements: [Placement]
    /// Throughput cells' placements when they differ (nil: `placements`). The default suite measures
    /// one CPU against two in latency mode only, where the difference is the point, to keep it short.
    public var throughputPlacements: [Placement]?
    public var repetitions: Int
    /// Upper bound on each repetition's timed loop; 0 means "run maximumMessages".
    public var durationSeconds: Double
    public var maximumMessages: Int
    /// nil picks a warm-up suited to the mode and size (see `warmupMessages(for:)`).
    public var warmupMessages: Int?
    public var limits: PairLimits
    public var fault: InjectedFault?
    /// netperf -I style: after `repetitions`, keep repeating a cell until the 95% confidence interval's
    /// half-width is within this fraction of the mean (0.05 = ±5%), or a budget runs out.
    public var targetRelativeCI: Double?
    public var maximumRepetitions = 30
    /// Stop the run at the first failed cell (default: keep going and report every failure).
    public var stopAtFirstFailure = false
    /// Run the repetitions in rounds, every cell once per round (SuiteRunner); false: each cell's
    /// repetitions back to back.
    public var interleavesRepetitions = true
    /// The clock of closed-loop latency loops: the TSC where usable (see LoopClock).
    public var loopClock = LoopClock.host
    /// Latency mode: messages per second on a fixed schedule (open loop); nil for closed-loop ping-pong.
    public var pacedRate: Double?
    public var repetitionBudgetSeconds = 30.0
    /// `--memory-node`: the NUMA node for shared-memory mechanisms' segments (nil: the kernel decides).
    public var memoryNode: MemoryNodeChoice?
    /// `--spin-pauses`: pauses between polls of spinning waiters (nil: chosen per cell from its floor).
    public var spinPausesPerPoll: Int?
    /// The range `--spin-pauses` accepts.
    public static let spinPausesRange = 0...64
    /// `HOST:PORT` of an `ipcbench serve` that runs every consumer (`run --remote`); nil for local runs.
    public var remote: String?
    /// `--pairs`: every cell runs with each of these numbers of pairs at once (one by default).
    public var pairCounts = [1]
    /// `--clients`: every cell runs with each of these numbers of producers served by one consumer
    /// (one by default: a pair). Not combined with several pairs.
    public var clientCounts = [1]
    /// `--readers`: every cell runs with each of these numbers of consumers receiving every message
    /// (one by default: a pair). Not combined with several pairs or clients.
    public var readerCounts = [1]
    /// What `PairLayout.spread` places several pairs over (nil topology: each CPU its own core).
    public var topology: Topology?
    public var allowedCPUs: [Int] = []

    public init(
        mechanisms: [any Mechanism], modes: [Mode], variants: [String]? = nil, sizes: [Int], touch: Touch = .read, placement: Placement,
        repetitions: Int = 3, durationSeconds: Double = 0.1, maximumMessages: Int = 1_000_000,
        warmupMessages: Int? = nil, limits: PairLimits = PairLimits(), fault: InjectedFault? = nil
    ) {
        self.mechanisms = mechanisms
        self.modes = modes
        self.variants = variants
        self.sizes = sizes
        self.touch = touch
        placements = [placement]
        self.repetitions = repetitions
        self.durationSeconds = durationSeconds
        self.maximumMessages = maximumMessages
        self.warmupMessages = warmupMessages
        self.limits = limits
        self.fault = fault
    }

    /// Mechanism-major, then mode, variant, wait, size, placement, pairs, clients and readers: the order of the CSV.
    public var cells: [Cell] {
        mechanisms.flatMap { mechanism in
            modes.flatMap { mode in
                selectedVariants(mechanism, mode).flatMap { variant in
                    waits.flatMap { wait in
                        sizes.flatMap { size in
                            placements(for: mode).flatMap { placement in
                                pairCounts.flatMap { pairs in
                                    clientCounts.flatMap { clients in readerCounts.map { readers in
                                        var cell = Cell(
                                            mechanism: mechanism, mode: mode, variant: variant, wait: wait, messageBytes: size, produce: produce,
                                            touch: touch, placement: placement, pacedRate: mode == .latency ? pacedRate : nil, memoryNode: memoryNode,
                                            remote: remote)
                                        if readers > 1 {
                                            cell.readers = readers
                                            cell.layout = PairLayout.fanOut(readers, around: placement, topology: topology, allowed: allowedCPUs)
                                        } else if clients > 1 {
                                            cell.clients = clients
                                            cell.layout = PairLayout.fanIn(clients, around: placement, topology: topology, allowed: allowedCPUs)
                                        } else if pairs > 1 {
                                            cell.layout = PairLayout.spread(pairs, around: placement, topology: topology, allowed: allowedCPUs)
                                        }
                                        return cell
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The placements of a mode's cells.
    func placements(for mode: Mode) -> [Placement] {
        mode == .throughput ? throughputPlacements ?? placements : placements
    }

    /// The default variants, or, when `variants` names some, those of all the mechanism's variants.
    func selectedVariants(_ mechanism: any Mechanism, _ mode: Mode) -> [String] {
        guard let variants else { return mechanism.variants(for: mode) }
        return (mechanism.variants(for: mode) + mechanism.optionalVariants(for: mode)).filter { variants.contains($0) }
    }

    /// Enough untimed messages to fault in buffers, fill kernel queues and settle the CPUs:
    /// 200 round trips, or 16 MiB of streaming (at least one message, at most 2,000).
    public func warmupMessages(for cell: Cell) -> Int {
        if let warmupMessages { return warmupMessages }
        switch cell.mode {
        case .latency: return 200
        case .throughput: return max(1, min(2000, (16 << 20) / cell.messageBytes))
        }
    }

    /// The workers' task for `cell`, with its memory node already resolved.
    public func task(for cell: Cell, memoryNode: Int? = nil) -> WorkerTask {
        var options = cell.options
        options.memoryNode = memoryNode
        options.spinPausesPerPoll = spinPausesPerPoll
        options.spinThenBlockNanoseconds = spinThenBlockNanoseconds
        options.waitTimeoutSeconds = waitTimeoutSeconds
        if let producer = cell.placement.producerCPU, producer == cell.placement.consumerCPU {
            options.peerSharesCPU = true
        }
        var task = WorkerTask(
            mechanismID: cell.mechanism.id, role: .producer, options: options, produce: cell.produce, touch: cell.touch, cpu: nil,
            warmupMessages: warmupMessages(for: cell), maximumMessages: maximumMessages,
            durationNanoseconds: UInt64(durationSeconds * 1e9), rendezvous: Rendezvous(), published: [:], fault: fault)
        // Across hosts the send time is on the client's clock, meaningless to the server's consumer.
        task.carriesSendTimestamp = cell.mechanism.carriesSendTimestamp && cell.remote == nil
        if let pacedRate = cell.pacedRate {
            // Paced sends sleep until CLOCK_MONOTONIC deadlines, so their times stay in that clock.
            task.sendIntervalNanoseconds = UInt64((1e9 / pacedRate).rounded())
        } else {
            task.clock = loopClock
        }
        return task
    }
}
