/// Runs one repetition of a cell: both workers here (`ProcessPair`), or the consumer on a remote
/// server (`RemoteClient`).
public typealias PairRunner = (_ cell: Cell, _ task: WorkerTask, _ limits: PairLimits) throws -> ProcessPair.Results

/// Runs every cell of a configuration in order, one process pair per repetition.
public enum SuiteRunner {
    /// Both workers on this machine.
    public static func localPair(_ cell: Cell, _ task: WorkerTask, _ limits: PairLimits) throws -> ProcessPair.Results {
        try ProcessPair.run(
            cell.mechanism, task: task, producerCPU: cell.placement.producerCPU,
            consumerCPU: cell.placement.consumerCPU, limits: limits)
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
    /// cell (the CSV could not be written).
    public static func run(
        _ configuration: RunConfiguration, pairs: PairRunner = localPair,
        continuing report: (CellOutcome, _ index: Int, _ total: Int) -> Bool
    ) -> [CellOutcome] {
        let cells = configuration.cells
        var outcomes: [CellOutcome] = []
        for (index, cell) in cells.enumerated() {
            if Interruption.requested { break }
            let load = MachineLoad.begin()
            let floorBefore = floorProbe(cell)
            guard var outcome = runCell(cell, configuration, pairs: pairs, cacheLineRoundTrip: floorBefore) else { break }
            outcome.machineLoad = MachineLoad.finish(load)
            if floorBefore != nil {
                outcome.floorBefore = floorBefore
                outcome.floorAfter = floorProbe(cell)
            }
            outcomes.append(outcome)
            guard report(outcome, index, cells.count) else { break }
            if configuration.stopAtFirstFailure, case .failed = outcome.status { break }
        }
        return outcomes
    }

    /// The cache-line floor between the cell's two CPUs, for shared-memory cells that will run.
    static func floorProbe(_ cell: Cell) -> Double? {
        if case .unavailable = cell.memoryNodeResolution() { return nil }
        guard cell.mechanism.sharesMemory, unavailableReason(cell) == nil,
              let producer = cell.placement.producerCPU, let consumer = cell.placement.consumerCPU
        else { return nil }
        return FloorProbe.roundTripNanoseconds(between: producer, and: consumer)
    }

    /// Measures one cell, or returns nil if the run was interrupted during it.
    public static func runCell(
        _ cell: Cell, _ configuration: RunConfiguration, pairs: PairRunner = localPair, cacheLineRoundTrip: Double? = nil
    ) -> CellOutcome? {
        if let reason = unavailableReason(cell) {
            return CellOutcome(cell: cell, status: .unavailable(reason))
        }
        // Resolved again per cell: local/remote follow the cell's consumer CPU.
        var memoryNode: Int?
        switch cell.memoryNodeResolution() {
        case .unbound: break
        case let .node(node): memoryNode = node
        case let .unavailable(reason): return CellOutcome(cell: cell, status: .unavailable(reason))
        }
        var task = configuration.task(for: cell, memoryNode: memoryNode)
        task.options.cacheLineRoundTripNanoseconds = cacheLineRoundTrip
        var runs: [ProcessPair.Results] = []
        let started = MonotonicClock.now()
        while needsAnotherRepetition(cell, runs, configuration, since: started) {
            do {
                runs.append(try pairs(cell, task, configuration.limits))
            } catch IPCError.interrupted {
                return nil
            } catch {
                var outcome = CellOutcome(cell: cell, status: .failed("\(error)"))
                outcome.repetitions = runs.count
                outcome.memoryNode = memoryNode
                return outcome
            }
        }
        var outcome = CellOutcome.aggregate(cell, runs)
        outcome.memoryNode = memoryNode
        return outcome
    }

    /// The planned repetitions first; then, with a CI target, more until the interval is narrow enough
    /// or the repetition or time budget is spent.
    static func needsAnotherRepetition(_ cell: Cell, _ runs: [ProcessPair.Results], _ configuration: RunConfiguration, since start: UInt64) -> Bool {
        if runs.count < configuration.repetitions { return true }
        guard let target = configuration.targetRelativeCI, runs.count < configuration.maximumRepetitions,
              Double(MonotonicClock.now() - start) / 1e9 < configuration.repetitionBudgetSeconds
        else { return false }
        guard let interval = CellOutcome.aggregate(cell, runs).confidenceInterval,
              let width = Statistics.relativeHalfWidth(interval)
        else { return true }
        return width > target
    }

    /// Why the cell cannot run on this system (mechanism missing, message over the system's limit).
    public static func unavailableReason(_ cell: Cell) -> String? {
        if let reason = cell.placement.unavailableReason { return reason }
        if let reason = cell.mechanism.unavailableReason() { return reason }
        if let reason = cell.mechanism.waitUnavailableReason(cell.wait, variant: cell.variant) { return reason }
        if let limit = cell.mechanism.messageLimit(), cell.messageBytes > limit.bytes {
            return "message of \(cell.messageBytes) bytes exceeds the limit of \(limit.bytes) bytes (\(limit.source))"
        }
        return nil
    }
}
