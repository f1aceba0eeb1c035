import Foundation

/// What `ipcbench run` was asked, as the user wrote it, and the rules that turn it into a
/// RunConfiguration. Every check of the options lives here, so it is tested in-process; the CLI
/// only fills this in from its arguments and prints. A bad option is a RunInputError saying what was
/// wrong and what is allowed, found before any file or worker is created.
public struct RunRequest: Sendable {
    public var mechanisms: String?
    public var sizes: String?
    public var mode = "latency,throughput"
    public var variants: String?
    public var wait = "block"
    /// Microseconds (`--spin-then-block`).
    public var spinThenBlock = Double(WaitStrategy.defaultSpinNanoseconds) / 1000
    public var waitTimeout = WaitStrategy.defaultTimeoutSeconds
    public var producerCPU: Int?
    public var consumerCPU: Int?
    public var placements: String?
    public var pairs: String?
    public var clients: String?
    public var readers: String?
    public var memoryNode: String?
    public var spinPauses: String?
    public var repetitions = 5
    public var rate: String?
    public var targetCI: String?
    public var duration: Double?
    public var messages: Int?
    public var warmup: Int?
    public var produce = "write"
    public var touch = "read"
    public var cellTimeout = 60.0
    public var quick = false
    public var failFast = false
    public var backToBack = false
    public var soak: String?
    public var remote: String?
    public var injectFault: String?

    public init() {}

    /// `--soak`: seconds, or a number with s, m or h; nil without it.
    public func soakSeconds() throws -> Double? {
        guard let soak else { return nil }
        let units: [(String, Double)] = [("h", 3600), ("m", 60), ("s", 1)]
        var number = soak
        var multiplier = 1.0
        if let (suffix, scale) = units.first(where: { soak.hasSuffix($0.0) }) {
            number = String(soak.dropLast(suffix.count))
            multiplier = scale
        }
        guard let value = Double(number), value > 0 else {
            throw RunInputError("--soak '\(soak)' is not a duration; expected seconds or a number with s, m or h, e.g. 10m")
        }
        return value * multiplier
    }

    /// `--remote HOST:PORT`, or nil.
    public func remoteTarget() throws -> HostAndPort? {
        guard let remote else { return nil }
        guard let target = HostAndPort(remote), target.port != 0 else {
            throw RunInputError("--remote '\(remote)' is not HOST:PORT; expected an IPv4 address or host name and the port `ipcbench serve` listens on, e.g. 192.168.1.20:\(ControlProtocol.defaultPort)")
        }
        return target
    }

    /// The run's configuration, every option checked before anything is created.
    public func configuration() throws -> RunConfiguration {
        let target = try remoteTarget()
        if target != nil {
            let allowed = MechanismRegistry.acrossHosts.map(\.id)
            if let mechanisms {
                let names = try RunInput.parseList(mechanisms, option: "--mechanisms", allowed: MechanismRegistry.ids)
                if let local = names.first(where: { !allowed.contains($0) }) {
                    throw RunInputError("--remote runs only mechanisms that work across hosts: \(allowed.joined(separator: ", ")) (not '\(local)')")
                }
            }
            if placements != nil {
                throw RunInputError("--placements cannot be combined with --remote: the consumer runs on the server; use --producer-cpu (here) and --consumer-cpu (on the server)")
            }
            if let consumerCPU, consumerCPU < 0 {
                throw RunInputError("--consumer-cpu \(consumerCPU) is not a CPU number")
            }
        }
        let mechanismList = target != nil && mechanisms == nil ? MechanismRegistry.acrossHosts : try RunInput.parseMechanisms(mechanisms)
        let modes = try RunInput.parseList(mode, option: "--mode", allowed: Mode.allCases.map(\.rawValue)).map { Mode(rawValue: $0)! }
        let allVariants = Array(Set(mechanismList.flatMap { m in modes.flatMap { m.variants(for: $0) + m.optionalVariants(for: $0) } })).sorted()
        let variantList = try variants.map { try RunInput.parseList($0, option: "--variants", allowed: allVariants) }
        let waitList = wait == "all"
            ? WaitStrategy.allCases
            : try RunInput.parseList(wait, option: "--wait", allowed: WaitStrategy.allCases.map(\.rawValue)).map { WaitStrategy(rawValue: $0)! }
        try RunInput.checkRange("--spin-then-block", spinThenBlock, RunInput.spinThenBlockRange, unit: " µs")
        try RunInput.checkRange("--wait-timeout", waitTimeout, RunInput.waitTimeoutRange, unit: " s")
        guard let producePolicy = Produce(rawValue: produce) else {
            throw RunInputError("--produce '\(produce)' is not a produce policy; allowed: \(Produce.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let touchPolicy = Touch(rawValue: touch) else {
            throw RunInputError("--touch '\(touch)' is not a touch policy; allowed: \(Touch.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if touchPolicy == .verify, producePolicy != .write {
            throw RunInputError("--touch verify checks the pattern the producer writes, so it needs --produce write (got --produce \(produce))")
        }
        let sizeList = try RunInput.parseSizes(sizes ?? (quick ? RunInput.quickSizes : RunInput.defaultSizes))
        try RunInput.checkSizesFit(sizeList, explicit: sizes != nil, mechanisms: mechanismList)

        try RunInput.checkRange("--repetitions", repetitions, RunInput.repetitionsRange)
        if let messages { try RunInput.checkRange("--messages", messages, RunInput.messagesRange) }
        if let warmup { try RunInput.checkRange("--warmup", warmup, RunInput.warmupRange) }
        if let duration { try RunInput.checkRange("--duration", duration, RunInput.durationRange, unit: " s") }
        try RunInput.checkRange("--cell-timeout", cellTimeout, RunInput.cellTimeoutRange, unit: " s")
        let fault = try injectFault.map { name in
            guard let fault = InjectedFault(rawValue: name) else {
                throw RunInputError("unknown fault '\(name)'; allowed: \(InjectedFault.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return fault
        }

        let allowed = Affinity.allowedCPUs()
        // With --remote the consumer's CPU is the server's: checked against its CPUs once connected.
        for (option, cpu) in [("--producer-cpu", producerCPU), ("--consumer-cpu", target == nil ? consumerCPU : nil)] {
            if let cpu, !allowed.contains(cpu) {
                throw RunInputError("\(option) \(cpu) is not a CPU this process can run on; allowed: \(RunInput.cpuListText(allowed))")
            }
        }
        let defaults = Placement.defaultPlacement(allowedCPUs: allowed)
        var placementList: [Placement]
        var throughputPlacements: [Placement]?
        if target != nil {
            // The consumer's CPU is filled in from the server's default once connected, unless named.
            placementList = [Placement(name: "remote", producerCPU: producerCPU ?? defaults.producerCPU, consumerCPU: consumerCPU)]
        } else if let placements {
            if producerCPU != nil || consumerCPU != nil {
                throw RunInputError("--placements cannot be combined with --producer-cpu/--consumer-cpu: choose named placements or explicit CPUs")
            }
            placementList = try RunInput.parsePlacements(placements, allowedCPUs: allowed)
        } else if producerCPU != nil || consumerCPU != nil {
            placementList = [Placement(producerCPU: producerCPU ?? defaults.producerCPU, consumerCPU: consumerCPU ?? defaults.consumerCPU)]
        } else {
            // The default shows both hand-off costs side by side, across CPUs and on one CPU, for
            // latency; throughput runs across CPUs only, to keep the default suite near a minute.
            placementList = try RunInput.parsePlacements(allowed.count >= 2 ? "cross-cpu,same-cpu" : "same-cpu", allowedCPUs: allowed)
            throughputPlacements = Array(placementList.prefix(1))
        }
        let placement = placementList[0]

        var configuration = RunConfiguration(
            mechanisms: mechanismList, modes: modes, variants: variantList, sizes: sizeList, touch: touchPolicy, placement: placement,
            repetitions: quick ? 1 : repetitions,
            durationSeconds: duration ?? (messages != nil ? 0 : 0.05),
            maximumMessages: messages ?? 1_000_000, warmupMessages: warmup ?? (quick ? 100 : nil),
            limits: PairLimits(cellTimeoutSeconds: cellTimeout), fault: fault)
        configuration.produce = producePolicy
        configuration.waits = waitList
        configuration.spinThenBlockNanoseconds = UInt64((spinThenBlock * 1000).rounded())
        configuration.waitTimeoutSeconds = waitTimeout
        configuration.placements = placementList
        configuration.throughputPlacements = throughputPlacements
        configuration.stopAtFirstFailure = failFast
        configuration.interleavesRepetitions = !backToBack
        configuration.memoryNode = try memoryNode.map(RunInput.parseMemoryNode)
        if let spinPauses {
            guard let count = Int(spinPauses), RunConfiguration.spinPausesRange.contains(count) else {
                let range = RunConfiguration.spinPausesRange
                throw RunInputError("--spin-pauses '\(spinPauses)' is not a pause count; expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            configuration.spinPausesPerPoll = count
        }
        configuration.remote = target?.description
        if let clients {
            configuration.clientCounts = try RunInput.parsePairs(clients, option: "--clients", noun: "clients")
        }
        if let pairs {
            configuration.pairCounts = try RunInput.parsePairs(pairs)
        }
        if let readers {
            configuration.readerCounts = try RunInput.parsePairs(readers, option: "--readers", noun: "readers")
        }
        let several = [("--pairs", configuration.pairCounts), ("--clients", configuration.clientCounts), ("--readers", configuration.readerCounts)]
            .filter { $0.1.contains { $0 > 1 } }
        if several.count > 1 {
            throw RunInputError("\(several.map(\.0).joined(separator: " and ")) above 1 cannot be combined: a cell is several independent pairs, one server with several clients, or one producer with several readers")
        }
        if let (option, _) = several.first {
            if target != nil {
                throw RunInputError("\(option) above 1 cannot be combined with --remote: one pair runs across the hosts")
            }
            if producerCPU != nil || consumerCPU != nil {
                throw RunInputError("\(option) above 1 places the workers itself; it cannot be combined with --producer-cpu/--consumer-cpu (use --placements cross-cpu, same-cpu or unpinned)")
            }
            if let named = placementList.first(where: { !RunInput.pairPlacements.contains($0.name) }) {
                throw RunInputError("\(option) above 1 works with the placements \(RunInput.pairPlacements.joined(separator: ", ")); '\(named.name)' places one pair")
            }
            if let choice = configuration.memoryNode, choice == .local || choice == .remote {
                throw RunInputError("--memory-node \(choice) is resolved from one consumer's CPU; with \(option) above 1 the workers spread over CPUs (and nodes), so give a node number")
            }
            configuration.topology = try? Topology.read()
            configuration.allowedCPUs = allowed
            let workers = max(2 * (configuration.pairCounts.max() ?? 1), (configuration.clientCounts.max() ?? 1) + 1, (configuration.readerCounts.max() ?? 1) + 1)
            try RunInput.ensureDescriptors(forWorkers: workers, option: option)
        }
        if let rate {
            let number = rate.hasSuffix("/s") ? String(rate.dropLast(2)) : rate
            guard let perSecond = Double(number), perSecond >= 1, perSecond <= 10_000_000 else {
                throw RunInputError("--rate '\(rate)' is not a send rate; expected messages per second from 1 to 10000000, e.g. 10000/s")
            }
            configuration.pacedRate = perSecond
        }
        if let targetCI {
            let number = targetCI.hasSuffix("%") ? String(targetCI.dropLast()) : targetCI
            guard let percent = Double(number), percent > 0, percent < 100 else {
                throw RunInputError("--target-ci '\(targetCI)' is not a percentage; expected e.g. 5% (between 0 and 100)")
            }
            configuration.targetRelativeCI = percent / 100
            configuration.repetitions = max(configuration.repetitions, 2)
        }
        return configuration
    }
}

/// A bad `run` option: what was wrong and what is allowed, in one line.
public struct RunInputError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ description: String) { self.description = description }
}
