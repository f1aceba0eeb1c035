/// Runs one repetition of a cell, the results of each of its pairs: every worker here
/// (`ProcessPair`), or the consumer on a remote server (`RemoteClient`).
public typealias PairRunner = (_ cell: Cell, _ task: WorkerTask, _ limits: PairLimits) throws -> [ProcessPair.Results]

/// Runs every cell of a configuration in order, one process pair per repetition.
public enum SuiteRunner {
    /// Both workers on this machine.
    public static func localPair(_ cell: Cell, _ task: WorkerTask, _ limits: PairLimits) throws -> [ProcessPair.Results] {
        let layout = cell.layout ?? PairLayout(single: cell.placement)
        if cell.readers > 1 {
            guard let fanOut = cell.mechanism as? any FanOutMechanism else { throw IPCError.setup("\(cell.mechanism.id) has no one-to-many shape") }
            return try ProcessPair.runFanOut(fanOut, task: task, layout: layout, limits: limits)
        }
        if cell.clients > 1 {
            guard let fanIn = cell.mechanism as? any FanInMechanism else { throw IPCError.setup("\(cell.mechanism.id) has no many-to-one shape") }
            return try ProcessPair.runFanIn(fanIn, task: task, layout: layout, limits: limits)
        }
        return try ProcessPair.run(cell.mechanism, task: task, layout: layout, limits: limits)
    }

    /// Runs the suite; `report` is called after each cell (for the CSV, which is written row by row,
    /// and progress). Stops early, returning what completed, if the run is interrupted.
    public static func run(
        _ configuration: RunConfiguration, pairs: PairRunner = localPair,
        report: (CellOutcome, _ index: Int, _ total: Int) -> Void
    ) -> [CellOutcome] {
        run(configuration, pairs: pairs) { outcome, index, total in
            report(outcome, index, total)
            return true
        }
    }

    /// Runs the suite like `run(_:pairs:report:)`; `report` returns false to end the run after that
    /// cell (the CSV could not be written). `repetitionDone` is called after every repetition (progress).
    ///
    /// With `interleavesRepetitions` the planned repetitions run in rounds: round r runs repetition r
    /// of every cell, in the suite's order, and the rows come after the last round. A cell's
    /// repetitions then sample the machine across the whole run (the host moving vCPUs, other
    /// tenants) as a second run would, instead of one moment: back to back, two runs of the same
    /// binary differ by more than each one's repetitions do, and `compare` would call the difference
    /// real. Without it, each cell's repetitions run back to back and its row is reported as soon as
    /// it is done. `--target-ci` adds repetitions to a cell after the rounds.
    public static func run(
        _ configuration: RunConfiguration, pairs: PairRunner = localPair,
        repetitionDone: (_ cell: Cell, _ done: Int, _ planned: Int) -> Void = { _, _, _ in },
        continuing report: (CellOutcome, _ index: Int, _ total: Int) -> Bool
    ) -> [CellOutcome] {
        // The IPC objects are named after this process: while it lives, other runs and `clean` must
        // see a live run (`ipcbench run` holds the lock already; anyone else takes it here).
        RunLock.holdUntilExit()
        var cells = configuration.cells.map { CellRun($0, configuration) }
        let planned = cells.count * configuration.repetitions
        var done = 0
        var stopped = false
        /// Runs one more repetition of cell `index`; false when the run must stop.
        func repeatCell(_ index: Int) -> Bool {
            if Interruption.requested { return false }
            guard cells[index].runRepetition(configuration, pairs: pairs) else { return false }
            done += 1
            repetitionDone(cells[index].cell, done, planned)
            return !(configuration.stopAtFirstFailure && cells[index].failed)
        }
        if configuration.interleavesRepetitions {
            rounds: for round in 0..<configuration.repetitions {
                for index in cells.indices where cells[index].wantsRepetition(round, of: configuration.repetitions) {
                    guard repeatCell(index) else {
                        stopped = true
                        break rounds
                    }
                }
            }
        }
        var outcomes: [CellOutcome] = []
        for index in cells.indices {
            if !configuration.interleavesRepetitions {
                while !stopped, cells[index].wantsRepetition(cells[index].runs.count, of: configuration.repetitions) {
                    stopped = !repeatCell(index)
                }
            }
            while !stopped, cells[index].wantsExtraRepetition(configuration) {
                stopped = !repeatCell(index)
            }
            // A cell stopped before any repetition has nothing to report.
            guard let outcome = cells[index].outcome() else { continue }
            outcomes.append(outcome)
            guard report(outcome, index, cells.count) else { break }
            if configuration.stopAtFirstFailure, case .failed = outcome.status { break }
            if stopped, !configuration.interleavesRepetitions { break }
        }
        return outcomes
    }

    /// One cell's repetitions so far, and what was observed around them.
    struct CellRun {
        let cell: Cell
        /// Set when the cell cannot run (unavailable) or a repetition failed: no more repetitions.
        var finalStatus: CellStatus?
        var task: WorkerTask?
        var memoryNode: Int?
        /// Per repetition, the results of each pair.
        var runs: [[ProcessPair.Results]] = []
        var loads: [MachineLoad.Observation] = []
        var floorsBefore: [Double] = []
        var floorsAfter: [Double] = []
        /// Spinning cells: the pauses per poll each repetition's waiters used.
        var spinPaces: [Int] = []
        /// When the first repetition started (the --target-ci time budget counts from it).
        var started: UInt64 = 0

        init(_ cell: Cell, _ configuration: RunConfiguration) {
            self.cell = cell
            if let reason = SuiteRunner.unavailableReason(cell) {
                finalStatus = .unavailable(reason)
                return
            }
            // Resolved per cell: local/remote follow the cell's consumer CPU.
            switch cell.memoryNodeResolution() {
            case .unbound: break
            case let .node(node): memoryNode = node
            case let .unavailable(reason):
                finalStatus = .unavailable(reason)
                return
            }
            task = configuration.task(for: cell, memoryNode: memoryNode)
        }

        var failed: Bool { if case .failed = finalStatus { true } else { false } }

        /// Whether planned repetition number `round` (from 0) is the next to run.
        func wantsRepetition(_ round: Int, of planned: Int) -> Bool {
            finalStatus == nil && runs.count == round && round < planned
        }

        /// With a CI target, beyond the planned repetitions: until the interval is narrow enough or
        /// the repetition or time budget is spent.
        func wantsExtraRepetition(_ configuration: RunConfiguration) -> Bool {
            guard finalStatus == nil, let target = configuration.targetRelativeCI, runs.count >= configuration.repetitions,
                  runs.count < configuration.maximumRepetitions,
                  Double(MonotonicClock.now() - started) / 1e9 < configuration.repetitionBudgetSeconds
            else { return false }
            guard let interval = CellOutcome.aggregate(cell, repetitions: runs).confidenceInterval,
                  let width = Statistics.relativeHalfWidth(interval)
            else { return true }
            return width > target
        }

        /// Runs one repetition; false if the run was interrupted during it.
        mutating func runRepetition(_ configuration: RunConfiguration, pairs: PairRunner) -> Bool {
            guard var task else { return true }
            if runs.isEmpty { started = MonotonicClock.now() }
            let load = MachineLoad.begin()
            let floorBefore = SuiteRunner.floorProbe(cell)
            task.options.cacheLineRoundTripNanoseconds = floorBefore
            if cell.spins {
                // Recorded in the row: --spin-pauses, else the pace SpinNotifier picks from the floor.
                let pace = task.options.spinPausesPerPoll ?? SpinNotifier.defaultPausesPerPoll(cacheLineRoundTrip: floorBefore)
                task.options.spinPausesPerPoll = pace
                spinPaces.append(pace)
            }
            do {
                runs.append(try pairs(cell, task, configuration.limits))
            } catch IPCError.interrupted {
                return false
            } catch {
                finalStatus = .failed("\(error)")
            }
            loads.append(MachineLoad.observe(load))
            if let floorBefore {
                floorsBefore.append(floorBefore)
                if let after = SuiteRunner.floorProbe(cell) { floorsAfter.append(after) }
            }
            return true
        }

        /// The row, aggregated over the repetitions that ran; nil when none did and the cell could run.
        func outcome() -> CellOutcome? {
            var outcome: CellOutcome
            switch finalStatus {
            case let .unavailable(reason)?:
                return CellOutcome(cell: cell, status: .unavailable(reason))
            case let .failed(reason)?:
                outcome = CellOutcome(cell: cell, status: .failed(reason))
                outcome.repetitions = runs.count
            default:
                guard !runs.isEmpty else { return nil }
                outcome = CellOutcome.aggregate(cell, repetitions: runs)
            }
            outcome.memoryNode = memoryNode
            outcome.machineLoad = MachineLoad(combining: loads)
            outcome.floorBefore = Statistics.median(floorsBefore)
            outcome.floorAfter = Statistics.median(floorsAfter)
            let paces: [Double] = spinPaces.map { Double($0) }
            if let pace = Statistics.median(paces) { outcome.spinPausesPerPoll = Int(pace.rounded()) }
            return outcome
        }
    }

    /// The cache-line floor between the cell's two CPUs, for shared-memory cells that will run.
    static func floorProbe(_ cell: Cell) -> Double? {
        if case .unavailable = cell.memoryNodeResolution() { return nil }
        guard cell.mechanism.sharesMemory, unavailableReason(cell) == nil,
              let producer = cell.placement.producerCPU, let consumer = cell.placement.consumerCPU
        else { return nil }
        return FloorProbe.roundTripNanoseconds(between: producer, and: consumer)
    }

    /// Why the cell cannot run on this system (mechanism missing, message over the system's limit).
    public static func unavailableReason(_ cell: Cell) -> String? {
        if let reason = cell.placement.unavailableReason { return reason }
        if let reason = cell.mechanism.unavailableReason() { return reason }
        if let reason = cell.mechanism.waitUnavailableReason(cell.wait, variant: cell.variant) { return reason }
        if cell.wait.usesCompletionRing, let reason = CompletionRing.unavailableReason(submissionPolling: cell.wait == .uringSQPoll) {
            return reason
        }
        if cell.wait == .uringSQPoll, cell.placement.producerCPU != nil,
           cell.placement.producerCPU == cell.placement.consumerCPU || cell.layout?.sharing == .cpu {
            // The polling threads inherit their worker's CPU: four threads, two of them busy-polling,
            // on one CPU; each hand-off then waits for a time slice (over 6 ms per message here).
            return "uring-sqpoll needs CPUs for its kernel polling threads: with workers sharing a CPU every hand-off waits for the scheduler"
        }
        if cell.clients > 1 {
            guard let fanIn = cell.mechanism as? any FanInMechanism else {
                let shapes = MechanismRegistry.all.filter { $0 is any FanInMechanism }.map(\.id).joined(separator: ", ")
                return "\(cell.mechanism.id) has no many-to-one shape for --clients (yet); these do: \(shapes)"
            }
            if cell.wait != .block {
                return "--clients serves with blocking waits only (the server waits on epoll or on its request queue); --wait \(cell.wait.rawValue) is for pairs"
            }
            if let reason = fanIn.fanInUnavailableReason(variant: cell.variant, messageBytes: cell.messageBytes) { return reason }
        }
        if cell.readers > 1 {
            guard let fanOut = cell.mechanism as? any FanOutMechanism else {
                let shapes = MechanismRegistry.all.filter { $0 is any FanOutMechanism }.map(\.id).joined(separator: ", ")
                return "\(cell.mechanism.id) has no one-to-many shape for --readers (yet); these do: \(shapes)"
            }
            if cell.mode == .latency {
                return "--readers measures streaming (every reader receives every message); ping-pong with several readers is not defined yet"
            }
            if !fanOut.fanOutVariants(for: cell.mode).contains(cell.variant) {
                return "\(cell.mechanism.id) \(cell.variant) has no one-to-many shape; --readers runs \(fanOut.fanOutVariants(for: cell.mode).joined(separator: ", "))"
            }
            if cell.wait != .block {
                return "--readers runs with blocking waits (or the broadcast ring's polling) only; --wait \(cell.wait.rawValue) is for pairs"
            }
        }
        if let limit = cell.mechanism.messageLimit(), cell.messageBytes > limit.bytes {
            return "message of \(cell.messageBytes) bytes exceeds the limit of \(limit.bytes) bytes (\(limit.source))"
        }
        return nil
    }
}
