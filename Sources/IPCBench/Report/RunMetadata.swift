import Foundation
import Glibc

/// `metadata.json` beside the CSV: what was run, where, and how trustworthy the clock and machine are.
public struct RunMetadata: Codable, Sendable {
    public struct Tool: Codable, Sendable {
        public var name = "ipcbench"
        public var version: String
        /// The checkout's HEAD when the run started (read from its .git, not built in).
        public var commit: String?
        /// Source files of that checkout changed after the binary was built (at most a few, by path),
        /// or nil when none is or no checkout was found: when there are some, the code that ran is
        /// not the code `commit` names.
        public var sourcesChangedSinceBuild: [String]?
    }

    public struct Host: Codable, Sendable {
        public var hostname: String
        public var kernel: String
        public var architecture: String
        public var cpuModel: String?
        public var onlineCPUs: [Int]
        public var allowedCPUs: [Int]
        public var numaNodes: [Int]
        /// `available (libnuma.so.1; nodes with memory: …)` or `unavailable: <reason>` (libnuma missing,
        /// kernel without NUMA): whether `--memory-node` can be honoured here.
        public var numaMemoryPlacement: String
        public var smtActive: Bool?
        public var virtualized: Bool
        public var clocksource: String?
        public var cpufreqGovernor: String?
        public var cpuidleDriver: String?
        public var cpuidleGovernor: String?
        public var guestHaltPollNanoseconds: Int?

        enum CodingKeys: String, CodingKey {
            case hostname, kernel, architecture, cpuModel, numaNodes, numaMemoryPlacement, smtActive, virtualized, clocksource
            case cpufreqGovernor, cpuidleDriver, cpuidleGovernor, guestHaltPollNanoseconds
            case onlineCPUs = "online_cpus", allowedCPUs = "allowed_cpus"
        }
    }

    public struct Configuration: Codable, Sendable {
        public var mechanisms: [String]
        public var modes: [String]
        public var variants: [String]?
        /// `--wait`, and the bounds of the strategies that have one.
        public var waits: [String]
        public var spinThenBlockMicroseconds: Double
        public var waitTimeoutSeconds: Double
        public var messageBytes: [Int]
        public var produce: String
        public var touch: String
        /// Each placement as `name` (`producer,consumer` CPUs) or `name: unavailable reason`.
        public var placements: [String]
        public var repetitions: Int
        /// `rounds` (every cell once per round, the default) or `back-to-back` (each cell's repetitions in a row).
        public var repetitionOrder: String
        public var durationSecondsPerRepetition: Double
        public var maximumMessagesPerRepetition: Int
        public var warmupMessages: Int?
        public var cellTimeoutSeconds: Double
        public var targetRelativeCI: Double?
        /// Open-loop latency rate (messages/s); nil for closed-loop ping-pong.
        public var pacedRatePerSecond: Double?
        /// `--memory-node` as given (a node, `local` or `remote`); nil when not given. Each row's
        /// memory_node says where that cell's shared memory was bound.
        public var memoryNode: String?
        /// `--spin-pauses`: pauses between polls of spinning waiters; nil when chosen per cell from
        /// its floor probe (1 under 150 ns, else 3).
        public var spinPausesPerPoll: Int?
        /// `--pairs`: how many producer/consumer pairs each cell runs at once (a list: a sweep).
        public var pairs: [Int] = [1]
        /// `--clients`: how many producers one consumer serves in each cell (a list: a sweep).
        public var clients: [Int] = [1]
        /// `--readers`: how many consumers receive every message in each cell (a list: a sweep).
        public var readers: [Int] = [1]
        /// How several pairs are placed (`PairLayout.policy`); nil when every cell has one pair.
        public var pairPlacementPolicy: String?

        enum CodingKeys: String, CodingKey {
            case mechanisms, modes, variants, waits, spinThenBlockMicroseconds, waitTimeoutSeconds, messageBytes, produce, touch, placements, repetitions
            case repetitionOrder
            case durationSecondsPerRepetition, maximumMessagesPerRepetition, warmupMessages, cellTimeoutSeconds
            case targetRelativeCI = "target_relative_ci", pacedRatePerSecond, memoryNode, spinPausesPerPoll, pairs, clients, readers, pairPlacementPolicy
        }
    }

    public var runID: String
    public var tool: Tool
    public var commandLine: [String]
    public var startedAt: String
    public var finishedAt: String?
    /// running | complete | interrupted | failed (a results write failed) | killed (set by `ipcbench clean`
    /// for a run that died without writing its outcome, e.g. by SIGKILL)
    public var state: String
    public var interruptedBy: String?
    public var wallSeconds: Double?
    /// The answer first (`Ranking.render`): the header, then one line per mode, size and placement,
    /// fastest cells first; nil for a soak or when nothing could be ranked. index.html shows it on top.
    public var ranking: [String]?
    public var cells: Int
    public var cellsCompleted: Int
    public var cellsFailed: Int
    public var cellsUnavailable: Int
    /// `--soak`: suite passes completed (nil for a single run).
    public var soakPasses: Int?
    /// IPC objects or temp directories found still present after a pass (each one a bug).
    public var leakedObjects: [String] = []
    public var host: Host
    /// CPUs, cores, SMT siblings, L3 groups and NUMA nodes from /sys (nil if /sys could not be read).
    public var topology: Topology?
    public var timerOverhead: TimerOverhead
    /// The clock the closed-loop latency loops timestamp with, and the cost of one read of it.
    public var latencyClock: String
    public var latencyClockOverhead: TimerOverhead
    /// Cache-line ping-pong round trip (ns) between the first two allowed CPUs at the start and end of
    /// the run: the floor for shared-memory hand-offs, which moves with the host's vCPU placement.
    public var floorProbeRoundTripNanoseconds: [String: Double] = [:]
    /// Kernel limits that bound what mechanisms can carry, read from /proc.
    public var limits: [String: Int]
    public var configuration: Configuration
    public var csvColumns: [String]
    /// `run --remote`: the server that ran every consumer (nil for a local run).
    public var remote: Remote?

    public struct Remote: Codable, Sendable {
        /// As given to `--remote` (also in every row's `remote` column).
        public var server: String
        public var hostname: String
        public var toolVersion: String
        public var allowedCPUs: [Int]
        public var note = "producer here, consumer on the server: latency is RTT/2 only (no clock shared by both hosts, so one_way columns are empty); throughput is timed on the consumer's clock alone; consumer_cpu and consumer CPU costs are the server's"

        public init(server: String, info: ServerInfo) {
            self.server = server
            hostname = info.hostname
            toolVersion = info.toolVersion
            allowedCPUs = info.allowedCPUs
        }
    }

    public static let version = "0.1.0"

    /// The metadata at the start of a run; the caller fills in the outcome fields as the run ends.
    public init(configuration: RunConfiguration, runID: String, started: Date, commandLine: [String]) {
        self.runID = runID
        let changed = SystemFacts.sourcesChangedSinceBuild()
        tool = Tool(version: Self.version, commit: SystemFacts.sourceCommit(), sourcesChangedSinceBuild: changed.isEmpty ? nil : changed)
        self.commandLine = commandLine
        startedAt = Self.timestamp(started)
        state = "running"
        cells = configuration.cells.count
        cellsCompleted = 0
        cellsFailed = 0
        cellsUnavailable = 0
        host = SystemFacts.host()
        topology = try? Topology.read()
        timerOverhead = LoopClock.monotonic.measureOverhead()
        latencyClock = configuration.loopClock.description
        latencyClockOverhead = configuration.loopClock.measureOverhead()
        let cpus = Affinity.allowedCPUs()
        if cpus.count >= 2, let floor = FloorProbe.roundTripNanoseconds(between: cpus[0], and: cpus[1]) {
            floorProbeRoundTripNanoseconds["start"] = (floor * 10).rounded() / 10
        }
        limits = SystemFacts.limits()
        self.configuration = Configuration(
            mechanisms: configuration.mechanisms.map(\.id), modes: configuration.modes.map(\.rawValue),
            variants: configuration.variants, waits: configuration.waits.map(\.rawValue),
            spinThenBlockMicroseconds: Double(configuration.spinThenBlockNanoseconds) / 1000, waitTimeoutSeconds: configuration.waitTimeoutSeconds,
            messageBytes: configuration.sizes, produce: configuration.produce.rawValue,
            touch: configuration.touch.rawValue,
            placements: configuration.placements.map(Self.describe), repetitions: configuration.repetitions,
            repetitionOrder: configuration.interleavesRepetitions ? "rounds" : "back-to-back",
            durationSecondsPerRepetition: configuration.durationSeconds,
            maximumMessagesPerRepetition: configuration.maximumMessages, warmupMessages: configuration.warmupMessages,
            cellTimeoutSeconds: configuration.limits.cellTimeoutSeconds, targetRelativeCI: configuration.targetRelativeCI,
            pacedRatePerSecond: configuration.pacedRate, memoryNode: configuration.memoryNode?.description,
            spinPausesPerPoll: configuration.spinPausesPerPoll, pairs: configuration.pairCounts,
            clients: configuration.clientCounts, readers: configuration.readerCounts,
            pairPlacementPolicy: (configuration.pairCounts + configuration.clientCounts + configuration.readerCounts).contains { $0 > 1 } ? PairLayout.policy : nil)
        csvColumns = CSVReport.columns
    }

    /// Writes the metadata as the whole content of `file` (rewritten in place as the run goes on).
    public func write(to file: OutputFile) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try file.rewrite(Array(try encoder.encode(self)) + [0x0A])
    }

    static func describe(_ placement: Placement) -> String {
        if let reason = placement.unavailableReason { return "\(placement.name): unavailable: \(reason)" }
        let cpus = [placement.producerCPU, placement.consumerCPU].map { $0.map(String.init) ?? "any" }
        return "\(placement.name) (producer CPU \(cpus[0]), consumer CPU \(cpus[1]))"
    }

    public static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
