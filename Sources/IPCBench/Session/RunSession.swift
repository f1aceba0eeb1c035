import Foundation

/// One `ipcbench run` between its checked configuration and its printed summary: the suite — or,
/// with a soak length, the suite again and again until the time is up — each outcome handed to
/// `record` as it comes, a check after every pass that this process holds no IPC object (each one
/// found is a leak: removed and reported), and the run's metadata completed at the end. The CLI
/// opens the files and prints; this part runs in-process in the tests.
public struct RunSession {
    /// What the run did.
    public struct Summary {
        public var outcomes: [CellOutcome] = []
        public var passes = 0
        public var leaks: [Leftover] = []
        public var wallSeconds = 0.0
        /// The CSV could not be written: the run stopped after the cell that failed to be.
        public var writeFailure: IPCError?
        /// The significance-ranked lines (empty for a soak).
        public var ranking = ""

        public var failed: [CellOutcome] { outcomes.filter { if case .failed = $0.status { true } else { false } } }
        public var unavailableCount: Int { outcomes.filter { if case .unavailable = $0.status { true } else { false } }.count }
    }

    public var configuration: RunConfiguration
    /// `--soak`: run passes until this many seconds have gone by (nil: one pass).
    public var soakSeconds: Double?
    /// Where each cell's pairs run (here, or with `--remote` half on a server).
    public var pairs: PairRunner

    public init(configuration: RunConfiguration, soakSeconds: Double? = nil, pairs: @escaping PairRunner = SuiteRunner.localPair) {
        self.configuration = configuration
        self.soakSeconds = soakSeconds
        self.pairs = pairs
    }

    /// Runs the passes. `record` writes an outcome (a throw ends the run: the results cannot be
    /// kept); `repetitionDone` reports progress (the cell and the pass's label prefix); `note` gets the
    /// lines worth a user's eye: leaks, failures during a soak, and cells the machine disturbed
    /// (unless `notesNoisyCells` is false).
    public func run(
        started: Date = Date(), notesNoisyCells: Bool = true,
        record: (CellOutcome) throws -> Void,
        repetitionDone: (_ cell: Cell, _ done: Int, _ pass: String) -> Void = { _, _, _ in },
        note: (String) -> Void = { _ in }
    ) -> Summary {
        var summary = Summary()
        let soaking = soakSeconds != nil
        repeat {
            summary.passes += 1
            let pass = soaking ? "pass \(summary.passes): " : ""
            _ = SuiteRunner.run(configuration, pairs: pairs, repetitionDone: { cell, done, _ in
                repetitionDone(cell, done, pass)
            }) { outcome, _, _ in
                summary.outcomes.append(outcome)
                do {
                    try record(outcome)
                } catch {
                    summary.writeFailure = error as? IPCError ?? .setup("\(error)")
                    return false
                }
                let name = "\(outcome.cell.mechanism.id) \(outcome.cell.variant) \(outcome.cell.mode.rawValue) \(ByteSize.format(outcome.cell.messageBytes))"
                if notesNoisyCells, !soaking, let warning = MachineLoad.noiseWarning(outcome) {
                    note("noisy cell \(name) \(outcome.cell.placement.name): \(warning)")
                }
                if case let .failed(reason) = outcome.status, soaking {
                    note("\(pass)\(name) failed: \(DisplayText.printable(reason))")
                }
                return true
            }
            // Between passes this process should hold no IPC object at all: anything found leaked.
            let held = Leftovers.heldByThisProcess()
            for leak in held {
                note("\(pass)leaked \(leak)")
                _ = Leftovers.remove(leak)
            }
            summary.leaks += held
        } while soakSeconds.map { Date().timeIntervalSince(started) < $0 } ?? false && !Interruption.requested && summary.writeFailure == nil
        summary.wallSeconds = Date().timeIntervalSince(started)
        summary.ranking = soaking ? "" : Ranking.render(Ranking.groups(summary.outcomes))
        return summary
    }

    /// The metadata's closing fields: when and how the run ended, what it completed, failed and
    /// leaked, the ranking, and the cache-line floor probed once more at the end.
    public func complete(_ metadata: inout RunMetadata, with summary: Summary) {
        metadata.finishedAt = RunMetadata.timestamp()
        let cpus = Affinity.allowedCPUs()
        if cpus.count >= 2, let floor = FloorProbe.roundTripNanoseconds(between: cpus[0], and: cpus[1]) {
            metadata.floorProbeRoundTripNanoseconds["end"] = (floor * 10).rounded() / 10
        }
        metadata.wallSeconds = (summary.wallSeconds * 100).rounded() / 100
        metadata.cellsCompleted = summary.outcomes.count
        metadata.soakPasses = soakSeconds == nil ? nil : summary.passes
        metadata.leakedObjects = summary.leaks.map(\.description)
        metadata.cellsFailed = summary.failed.count
        metadata.cellsUnavailable = summary.unavailableCount
        metadata.ranking = summary.ranking.isEmpty ? nil : summary.ranking.split(separator: "\n").map(String.init)
        metadata.state = summary.writeFailure != nil ? "failed" : Interruption.requested ? "interrupted" : "complete"
        if Interruption.requested { metadata.interruptedBy = Interruption.signalName }
    }
}
