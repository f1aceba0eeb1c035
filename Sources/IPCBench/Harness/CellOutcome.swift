/// How a cell ended.
public enum CellStatus: Sendable, Equatable {
    case ok
    case failed(String)
    case unavailable(String)

    /// As written to the CSV's status column.
    public var text: String {
        switch self {
        case .ok: "ok"
        case let .failed(reason): "failed: \(reason)"
        case let .unavailable(reason): "unavailable: \(reason)"
        }
    }

    public var isOK: Bool { self == .ok }
}

/// One cell's figures, aggregated over its repetitions.
public struct CellOutcome: Sendable {
    public var cell: Cell
    public var status: CellStatus
    public var repetitions = 0
    /// Timed messages over all repetitions (round trips in latency mode).
    public var messages: UInt64 = 0
    /// Latency mode: RTT/2 from the producer's round trips, and the consumer's true one-way delay.
    public var halfRoundTrip: LatencySummary?
    public var oneWay: LatencySummary?
    /// Latency mode: p50 RTT/2 over the first and over the second half of the timed loops (merged
    /// over repetitions). A figure that moves between them depends on how long the cell ran.
    public var halfRoundTripP50ByHalf: (first: Double, second: Double)?
    /// Median over repetitions. In latency mode msgs/s counts round trips.
    public var messagesPerSecond: Double?
    public var bytesPerSecond: Double?
    /// Coefficient of variation across repetitions of the headline figure
    /// (p50 of RTT/2 for latency, bytes/s for throughput).
    public var coefficientOfVariation: Double?
    /// 95% confidence interval of the mean of the headline figure across repetitions (Student's t).
    public var confidenceInterval: ClosedRange<Double>?
    /// The headline figure of each repetition, in the order they ran (what `compare` tests).
    public var headlinePerRepetition: [Double] = []
    public var lost: UInt64 = 0
    public var reordered: UInt64 = 0
    public var corrupt: UInt64 = 0
    /// Shared-memory cells: cache-line ping-pong round trip (ns) between the cell's CPUs right before
    /// and after it ran — the floor its figures should be read against.
    public var floorBefore: Double?
    public var floorAfter: Double?
    /// Spinning cells: pauses between two polls of the spinning waiters (median over repetitions).
    public var spinPausesPerPoll: Int?
    /// How busy the machine was around the cell.
    public var machineLoad = MachineLoad()
    /// Each worker's CPU time and context switches in its timed loops, summed over repetitions.
    public var producerUsage = CPUUsage()
    public var consumerUsage = CPUUsage()
    /// CPUs the workers reported running on (equal to the placement's when pinned).
    public var producerCPUSeen: Int?
    public var consumerCPUSeen: Int?
    /// `--pairs` above 1: how far apart the pairs' own headline figures were, (max − min) / mean in
    /// percent, median over the repetitions.
    public var pairSpreadPercent: Double?
    /// The NUMA node the shared memory was bound to (`--memory-node`, resolved), nil when not bound.
    public var memoryNode: Int?
    /// Pages of the bound shared memory that every worker found on `memoryNode` (fewest over the
    /// repetitions), nil when not bound.
    public var verifiedMemoryPages: Int?

    /// How far the second half's p50 RTT/2 is from the first half's, in percent of the first.
    public var driftPercent: Double? {
        guard let halves = halfRoundTripP50ByHalf, halves.first > 0 else { return nil }
        return (halves.second / halves.first - 1) * 100
    }

    /// True when the halves differ by more than `driftThresholdPercent` and by more than
    /// `driftThresholdNanoseconds` (two steps of a 10 ns clock, below which single percentiles are
    /// quantised): run the cell longer, or repeat it, before trusting its figure.
    public var drifted: Bool? {
        guard let halves = halfRoundTripP50ByHalf, let percent = driftPercent else { return nil }
        return abs(percent) > Self.driftThresholdPercent && abs(halves.second - halves.first) > Self.driftThresholdNanoseconds
    }

    public static let driftThresholdPercent = 10.0
    public static let driftThresholdNanoseconds = 20.0

    public init(cell: Cell, status: CellStatus) {
        self.cell = cell
        self.status = status
    }

    /// Folds the repetitions of a cell, one pair each, into one outcome.
    public static func aggregate(_ cell: Cell, _ runs: [ProcessPair.Results]) -> CellOutcome {
        aggregate(cell, repetitions: runs.map { [$0] })
    }

    /// Folds the repetitions of a cell into one outcome; each repetition holds the results of every
    /// pair that ran at once (`--pairs`). Latency percentiles merge every pair's round trips; rates
    /// add up over the pairs, so msgs/s and bytes/s are the whole cell's.
    public static func aggregate(_ cell: Cell, repetitions: [[ProcessPair.Results]]) -> CellOutcome {
        var outcome = CellOutcome(cell: cell, status: .ok)
        outcome.repetitions = repetitions.count
        var roundTrips = LatencyHistogram()
        var roundTripHalves = [LatencyHistogram(), LatencyHistogram()]
        var oneWay = LatencyHistogram()
        var headline: [Double] = []
        var rates: [Double] = []
        var byteRates: [Double] = []
        var spreads: [Double] = []
        var pairsWithErrors: [Int] = []
        for pairs in repetitions {
            var repetitionTrips = LatencyHistogram()
            var pairHeadlines: [Double] = []
            for (index, run) in pairs.enumerated() {
                outcome.lost += run.consumer.lost
                outcome.reordered += run.consumer.reordered + run.producer.reordered
                outcome.corrupt += run.consumer.corrupt
                outcome.producerUsage = outcome.producerUsage + run.producer.cpuUsage
                outcome.consumerUsage = outcome.consumerUsage + run.consumer.cpuUsage
                if index == 0 {
                    outcome.producerCPUSeen = run.producer.cpuBefore
                    outcome.consumerCPUSeen = run.consumer.cpuBefore
                }
                if let pages = [run.producer.boundMemoryPages, run.consumer.boundMemoryPages, outcome.verifiedMemoryPages].compactMap({ $0 }).min() {
                    outcome.verifiedMemoryPages = pages
                }
                switch cell.mode {
                case .latency:
                    outcome.messages += run.producer.messages
                    if let trips = run.producer.roundTrip {
                        repetitionTrips.merge(trips)
                        pairHeadlines.append(trips.median / 2)
                    }
                    if let halves = run.producer.roundTripHalves, halves.count == 2 {
                        roundTripHalves[0].merge(halves[0])
                        roundTripHalves[1].merge(halves[1])
                    }
                    if let delays = run.consumer.oneWay { oneWay.merge(delays) }
                case .throughput:
                    outcome.messages += run.consumer.messages
                    if let (messages, seconds) = streamingInterval(run, remote: cell.remote != nil) {
                        pairHeadlines.append(messages * Double(cell.messageBytes) / seconds)
                    }
                }
                let errors = run.consumer.reordered + run.producer.reordered + run.consumer.corrupt
                    + (cell.mechanism.losesMessages ? 0 : run.consumer.lost)
                // Under --clients the server's totals sit on client 0 (ProcessPair.split): no names.
                if pairs.count > 1, cell.clients == 1, errors > 0 { pairsWithErrors.append(index) }
                // A lossy mechanism's consumer may see none of a pair's messages: that is loss, counted
                // as such; what must not happen is a producer that sent none.
                let completed = cell.mode == .latency || cell.mechanism.losesMessages ? run.producer.messages : run.consumer.messages
                if pairs.count > 1, outcome.status.isOK, completed == 0 {
                    outcome.status = .failed("\(cell.memberName) \(index) completed no timed messages")
                }
                if run.consumer.messagesSentByProducer != run.producer.messages {
                    let pair = pairs.count > 1 ? " (\(cell.memberName) \(index))" : ""
                    outcome.status = .failed("consumer saw \(run.consumer.messagesSentByProducer) timed messages announced, producer sent \(run.producer.messages)\(pair)")
                }
            }
            switch cell.mode {
            case .latency:
                if repetitionTrips.count > 0 { headline.append(repetitionTrips.median / 2) }
                // Every pair's round trips over the span of all their loops: pairs whose loops did
                // not overlap are not counted as if they ran side by side.
                let start = pairs.map(\.producer.loopStartNanoseconds).min() ?? 0
                let end = pairs.map(\.producer.loopEndNanoseconds).max() ?? 0
                if end > start { rates.append(Double(pairs.map(\.producer.messages).reduce(0, +)) / (Double(end - start) / 1e9)) }
                roundTrips.merge(repetitionTrips)
            case .throughput:
                guard let (messages, seconds) = streamingInterval(pairs, remote: cell.remote != nil) else { continue }
                rates.append(messages / seconds)
                byteRates.append(messages * Double(cell.messageBytes) / seconds)
                headline.append(messages * Double(cell.messageBytes) / seconds)
            }
            if pairs.count > 1, pairHeadlines.count == pairs.count, let spread = Statistics.spreadPercent(pairHeadlines) {
                spreads.append(spread)
            }
        }
        outcome.halfRoundTrip = roundTrips.summary(scale: 0.5)
        if roundTripHalves.allSatisfy({ $0.count > 0 }) {
            outcome.halfRoundTripP50ByHalf = (roundTripHalves[0].median / 2, roundTripHalves[1].median / 2)
        }
        outcome.oneWay = oneWay.summary()
        outcome.messagesPerSecond = Statistics.median(rates)
        outcome.bytesPerSecond = Statistics.median(byteRates)
        outcome.coefficientOfVariation = Statistics.coefficientOfVariation(headline)
        outcome.confidenceInterval = Statistics.confidenceInterval95(headline)
        outcome.headlinePerRepetition = headline
        outcome.pairSpreadPercent = Statistics.median(spreads)
        let errors = outcome.reordered + outcome.corrupt + (cell.mechanism.losesMessages ? 0 : outcome.lost)
        if outcome.status.isOK, errors > 0 {
            let named = Array(Set(pairsWithErrors)).sorted()
            let pairs = named.isEmpty ? "" : " (\(cell.memberName)\(named.count > 1 ? "s" : "") \(named.map(String.init).joined(separator: ", ")))"
            outcome.status = .failed("\(outcome.lost) lost, \(outcome.reordered) reordered, \(outcome.corrupt) corrupt messages\(pairs)")
        }
        if outcome.status.isOK, outcome.messages == 0 {
            outcome.status = .failed("no timed messages completed")
        }
        return outcome
    }

    /// All pairs' messages and the seconds from the first producer's first timed send to the last
    /// consumer's last receive: the whole cell's transfer, every pair's last byte counted.
    static func streamingInterval(_ pairs: [ProcessPair.Results], remote: Bool) -> (messages: Double, seconds: Double)? {
        guard pairs.count > 1 else { return pairs.first.flatMap { streamingInterval($0, remote: remote) } }
        let lasts = pairs.compactMap(\.consumer.lastReceiveNanoseconds)
        guard lasts.count == pairs.count, let last = lasts.max(), let start = pairs.map(\.producer.loopStartNanoseconds).min(), last > start
        else { return nil }
        return (Double(pairs.map(\.consumer.messages).reduce(0, +)), Double(last - start) / 1e9)
    }

    /// Messages streamed and the seconds they took. Locally: every timed message, from the producer's
    /// first timed send to the consumer's last receive (one clock). Across hosts the two clocks are
    /// unrelated, so the consumer's alone is used: the messages after the first timed one, from its
    /// arrival to the last receive.
    static func streamingInterval(_ run: ProcessPair.Results, remote: Bool) -> (messages: Double, seconds: Double)? {
        guard let last = run.consumer.lastReceiveNanoseconds else { return nil }
        if remote {
            guard let first = run.consumer.firstReceiveNanoseconds, last > first, run.consumer.messages > 1 else { return nil }
            return (Double(run.consumer.messages - 1), Double(last - first) / 1e9)
        }
        guard last > run.producer.loopStartNanoseconds else { return nil }
        return (Double(run.consumer.messages), Double(last - run.producer.loopStartNanoseconds) / 1e9)
    }
}
