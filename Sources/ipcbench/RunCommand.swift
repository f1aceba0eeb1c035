import ArgumentParser
import Foundation
import IPCBench

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the benchmark suite (by default: every available mechanism, both modes, a size sweep).",
        discussion: """
            Writes the results CSV, metadata.json beside it, and prints a summary table. \
            Progress goes to stderr when it is a terminal. Exits 1 if any cell failed, \
            2 on bad input, 129/130/143 when interrupted (SIGHUP/SIGINT/SIGTERM).
            """)

    static let defaultSizes = "16,4K,64K,1M"
    static let quickSizes = "64,64K"

    @Option(help: ArgumentHelp("Comma-separated mechanism ids (see `ipcbench list`).", valueName: "ids"))
    var mechanisms: String?

    @Option(help: ArgumentHelp("Comma-separated message sizes: bytes, or with K/M/G suffix (×1024). Default \(defaultSizes).", valueName: "sizes"))
    var sizes: String?

    @Option(name: [.customLong("mode"), .customLong("modes")],
            help: ArgumentHelp("latency (ping-pong), throughput (streaming), or both comma-separated.", valueName: "modes"))
    var mode = "latency,throughput"

    @Option(help: ArgumentHelp("Comma-separated variants to keep (see `ipcbench list`). Default: every variant.", valueName: "variants"))
    var variants: String?

    @Option(help: ArgumentHelp(
        "How workers wait: comma-separated \(WaitStrategy.allCases.map(\.rawValue).joined(separator: ", ")), or all. Each is its own rows; a mechanism that does not support one gives unavailable rows (see `ipcbench list`). Default: block.",
        valueName: "strategies"))
    var wait = "block"

    @Option(name: .customLong("spin-then-block"), parsing: .unconditional, help: ArgumentHelp(
        "--wait spin-then-block: microseconds of non-blocking retries before a blocking wait, \(Self.spinThenBlockRange.lowerBound) to \(Self.spinThenBlockRange.upperBound). Default \(Double(WaitStrategy.defaultSpinNanoseconds) / 1000).",
        valueName: "us"))
    var spinThenBlock = Double(WaitStrategy.defaultSpinNanoseconds) / 1000

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "--wait timed: seconds a wait may last before the cell fails with a timeout, \(Self.waitTimeoutRange.lowerBound) to \(Self.waitTimeoutRange.upperBound). Default \(WaitStrategy.defaultTimeoutSeconds).",
        valueName: "seconds"))
    var waitTimeout = WaitStrategy.defaultTimeoutSeconds

    @Option(parsing: .unconditional, help: ArgumentHelp("CPU to pin the producer to. Default: the first CPU this process may use.", valueName: "cpu"))
    var producerCPU: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("CPU to pin the consumer to. Default: the second CPU this process may use (the first if there is only one).", valueName: "cpu"))
    var consumerCPU: Int?

    @Option(help: ArgumentHelp(
        "Comma-separated named placements: cross-cpu (the first two allowed CPUs), \(NamedPlacement.allCases.map(\.rawValue).joined(separator: ", ")). Default: cross-cpu,same-cpu for latency, cross-cpu for throughput. Ones this machine cannot offer are reported as unavailable.",
        valueName: "names"))
    var placements: String?

    @Option(help: ArgumentHelp(
        "Producer/consumer pairs of each cell that run at once, each pair on its own channel: a number or a comma-separated sweep (e.g. 1,2,4), \(Self.pairsRange.lowerBound) to \(Self.pairsRange.upperBound). Pair 0 keeps the placement; the others spread over unused cores, then SMT siblings, then share CPUs (the pair_sharing column says which). Rows give the aggregate msgs/s and bytes/s, latency merged over the pairs and the pairs' spread. Works with the placements cross-cpu, same-cpu and unpinned. Default 1.",
        valueName: "counts"))
    var pairs: String?

    @Option(help: ArgumentHelp(
        "Producers (clients) one consumer (the server) serves at once: a number or a comma-separated sweep (e.g. 1,2,4), \(Self.pairsRange.lowerBound) to \(Self.pairsRange.upperBound). For mechanisms with a many-to-one shape (unix-stream, tcp: one listening socket, epoll; posix-mq: one request queue, a reply queue per client; udp: one socket, clients told apart by address); others give unavailable rows. The server keeps the consumer's CPU; clients start on the producer's and spread over the rest. Rows give the server's total msgs/s and bytes/s and latency merged over the clients. Not combined with --pairs above 1. Default 1.",
        valueName: "counts"))
    var clients: String?

    @Option(help: ArgumentHelp(
        "Consumers (readers) that each receive every message of one producer, streaming only: a number or a comma-separated sweep, \(Self.pairsRange.lowerBound) to \(Self.pairsRange.upperBound). For mechanisms with a one-to-many shape (shm-posix in-place/spin: one broadcast ring read in place by all; unix-stream: the message written to a socket per reader); others give unavailable rows. Rows give the bytes delivered to all readers per second. Not combined with --pairs or --clients above 1. Default 1.",
        valueName: "counts"))
    var readers: String?

    @Option(help: ArgumentHelp(
        "NUMA node for the shared memory of shm-posix, shm-sysv, mmap-file and memfd cells: a node number, local (the consumer's node) or remote (the node farthest from it). The pages are bound before first touch and checked by each worker. Other mechanisms are not affected (their memory_node stays empty). Default: the kernel decides.",
        valueName: "node"))
    var memoryNode: String?

    @Option(help: ArgumentHelp(
        "PAUSE instructions between two polls of a spinning waiter (the shared-memory rings' spin variants), \(RunConfiguration.spinPausesRange.lowerBound) to \(RunConfiguration.spinPausesRange.upperBound). Polling too often pulls the cache line away from the writer, too rarely notices a message late; the best pace depends on how far apart the two CPUs are. Default: 1 when the cell's cache-line floor is under 150 ns round trip, else 3.",
        valueName: "count"))
    var spinPauses: String?

    @Option(parsing: .unconditional, help: "Process pairs per cell; figures are aggregated over them (median, coefficient of variation).")
    var repetitions = 5

    @Option(help: ArgumentHelp("Open-loop latency: send this many messages per second on a fixed schedule (e.g. 10000 or 10000/s) and measure from each intended send time. Default: closed-loop ping-pong.", valueName: "rate"))
    var rate: String?

    @Option(help: ArgumentHelp("Repeat each cell beyond --repetitions until the 95% confidence interval of its mean is within this (e.g. 5%) — at most 30 repetitions or 30 s per cell.", valueName: "percent"))
    var targetCi: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Upper bound on each repetition's timed loop, in seconds. Default 0.05, or none when --messages is given.", valueName: "seconds"))
    var duration: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Timed messages (round trips in latency mode) per repetition. Default 1000000, usually cut short by --duration.", valueName: "count"))
    var messages: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Untimed warm-up messages per repetition. Default: 200 round trips, or up to 16 MiB of streaming.", valueName: "count"))
    var warmup: Int?

    @Option(help: ArgumentHelp("What the producer writes into each message: write (every payload byte, a per-message pattern; the default) or header (the 16-byte header only: signalling alone, the payload never moves).", valueName: "policy"))
    var produce = "write"

    @Option(help: ArgumentHelp("What the consumer does with each payload: none (header only), read (every byte once), verify (check the producer's pattern; needs --produce write).", valueName: "policy"))
    var touch = "read"

    @Option(help: ArgumentHelp("Results CSV path; its directory must exist, and an existing file is refused unless --force. Default ipcbench-out/<host>-<time>/results.csv, a new directory.", valueName: "path"))
    var out: String?

    @Flag(help: "Overwrite an existing --out file (and its metadata file) if it is a regular file.")
    var force = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds a repetition may run beyond its --duration before it is failed and its workers killed.", valueName: "seconds"))
    var cellTimeout = 60.0

    @Flag(help: "A few seconds' smoke run: sizes \(quickSizes), one repetition, 0.05 s per cell.")
    var quick = false

    @Flag(help: "Stop at the first failed cell (default: keep going, report every failure, exit 1 at the end).")
    var failFast = false

    @Flag(help: "Run each cell's repetitions back to back, writing its row as soon as it is done. Default: in rounds, every cell once per round, so that each cell's repetitions sample the whole run (what `compare` needs); rows are written after the last round.")
    var backToBack = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @Flag(help: "Also write the rows as JSON beside the CSV (X.json for X.csv), with the CSV's column names: numbers as numbers, empty fields as null.")
    var json = false

    @Flag(help: "Do not draw plots at the end (by default scripts/plot.py draws them when its Python environment is set up).")
    var noPlots = false

    @Option(help: ArgumentHelp("Soak test: run the suite over and over for this long (e.g. 600s, 10m, 1h), checking after every pass that nothing was leaked; report every failure and leak at the end.", valueName: "duration"))
    var soak: String?

    @Option(help: ArgumentHelp("Run each consumer on `ipcbench serve` at HOST:PORT (IPv4) and the producers here: the network mechanisms (\(MechanismRegistry.acrossHosts.map(\.id).joined(separator: ", "))) between two hosts. --consumer-cpu then names a CPU of the server. Latency is RTT/2 only.", valueName: "host:port"))
    var remote: String?

    /// Test-only: inject a fault into the producer's stream (drop, reorder or corrupt one message), or
    /// make the latency consumer exit early (exit-early).
    @Option(help: .private)
    var injectFault: String?

    func validate() throws {
        _ = try resolvedConfiguration()
        _ = try soakSeconds()
        // With --remote the path is checked once the server has answered, so an unreachable server
        // leaves no empty file behind (still before any worker starts).
        if remote == nil { _ = try outputPath(creatingDefault: false) }
    }

    func soakSeconds() throws -> Double? {
        guard let soak else { return nil }
        let units: [(String, Double)] = [("h", 3600), ("m", 60), ("s", 1)]
        var number = soak
        var multiplier = 1.0
        if let (suffix, scale) = units.first(where: { soak.hasSuffix($0.0) }) {
            number = String(soak.dropLast(suffix.count))
            multiplier = scale
        }
        guard let value = Double(number), value > 0 else {
            throw ValidationError("--soak '\(soak)' is not a duration; expected seconds or a number with s, m or h, e.g. 10m")
        }
        return value * multiplier
    }

    func run() throws {
        var configuration = try resolvedConfiguration()
        Interruption.install()
        // Held while this run may own IPC objects, so `clean` leaves them alone whatever this binary is called.
        do { try RunLock.acquire() } catch { throw Self.failure("cannot create the run lock: \(error)") }
        defer { RunLock.release() }
        // A remote run connects first, so an unreachable server leaves no output files behind.
        let client = try connectToServer(&configuration)
        defer { client?.close() }
        let csvPath: String
        do {
            csvPath = try outputPath()!
        } catch let error as ValidationError {
            // Same one-line form as validate()'s (reached with --remote, or for the default directory).
            throw Self.usageError(error.description)
        }
        let metadataPath = Self.metadataPath(forCSV: csvPath)
        let csvFile: OutputFile
        let metadataFile: OutputFile
        var jsonFile: OutputFile?
        do {
            csvFile = try OutputFile(creating: csvPath, replacing: force)
            metadataFile = try OutputFile(creating: metadataPath, replacing: force)
            if json { jsonFile = try OutputFile(creating: Self.jsonPath(forCSV: csvPath), replacing: force) }
        } catch let error as IPCError {
            throw Self.usageError(error.description)
        }
        if configuration.memoryNode != nil, let reason = NUMA.unavailableReason {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench: warning: --memory-node: NUMA memory placement is unavailable here: \(reason); shared-memory cells are written as unavailable, the others run as usual\n".utf8))
        }
        let leftovers = Leftovers.find().found
        if !leftovers.isEmpty {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench: warning: \(leftovers.count) object(s) left by crashed earlier runs (e.g. \(leftovers[0])); remove them with `ipcbench clean`\n".utf8))
        }

        let changedSources = SystemFacts.sourcesChangedSinceBuild()
        if !changedSources.isEmpty {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench: warning: source files changed after this binary was built (\(changedSources.joined(separator: ", "))): the code that runs is not the checkout's commit; rebuild to measure it (metadata: sources_changed_since_build)\n".utf8))
        }

        let runID = Self.runID()
        let started = Date()
        let report = try Self.writing { try CSVReport(file: csvFile, runID: runID) }
        var metadata = RunMetadata(configuration: configuration, runID: runID, started: started, commandLine: CommandLine.arguments)
        if let client { metadata.remote = RunMetadata.Remote(server: client.address, info: client.server) }
        try Self.writing { try metadata.write(to: metadataFile) }
        RunLock.record(metadataPath: metadataPath, runID: runID)

        let cells = configuration.cells
        let progress = Progress(total: cells.count * configuration.repetitions, enabled: !quiet && isatty(2) != 0)
        let soakLength = try soakSeconds()
        var outcomes: [CellOutcome] = []
        var passes = 0
        var leaks: [Leftover] = []
        var writeFailure: IPCError?
        repeat {
            passes += 1
            let pass = soakLength == nil ? "" : "pass \(passes): "
            _ = SuiteRunner.run(configuration, pairs: client?.pairs ?? SuiteRunner.localPair, repetitionDone: { cell, done, _ in
                progress.repetitionDone(done, label: "\(pass)\(cell.mechanism.id) \(cell.mode.rawValue) \(ByteSize.format(cell.messageBytes))")
            }) { outcome, _, _ in
                outcomes.append(outcome)
                do {
                    try report.append(outcome)
                } catch {
                    writeFailure = error as? IPCError ?? .setup("\(error)")
                    return false
                }
                if let warning = MachineLoad.noiseWarning(outcome), !quiet, soakLength == nil {
                    progress.note("noisy cell \(outcome.cell.mechanism.id) \(outcome.cell.variant) \(outcome.cell.mode.rawValue) \(ByteSize.format(outcome.cell.messageBytes)) \(outcome.cell.placement.name): \(warning)")
                }
                if case let .failed(reason) = outcome.status, soakLength != nil {
                    progress.note("\(pass)\(outcome.cell.mechanism.id) \(outcome.cell.variant) \(outcome.cell.mode.rawValue) \(ByteSize.format(outcome.cell.messageBytes)) failed: \(DisplayText.printable(reason))")
                }
                return true
            }
            // Between passes this process should hold no IPC object at all: anything found leaked.
            let held = Leftovers.heldByThisProcess()
            for leak in held {
                progress.note("\(pass)leaked \(leak)")
                _ = Leftovers.remove(leak)
            }
            leaks += held
        } while soakLength.map { Date().timeIntervalSince(started) < $0 } ?? false && !Interruption.requested && writeFailure == nil
        progress.finish()

        let wall = Date().timeIntervalSince(started)
        metadata.finishedAt = RunMetadata.timestamp()
        let cpus = Affinity.allowedCPUs()
        if cpus.count >= 2, let floor = FloorProbe.roundTripNanoseconds(between: cpus[0], and: cpus[1]) {
            metadata.floorProbeRoundTripNanoseconds["end"] = (floor * 10).rounded() / 10
        }
        metadata.wallSeconds = (wall * 100).rounded() / 100
        metadata.cellsCompleted = outcomes.count
        metadata.soakPasses = soakLength == nil ? nil : passes
        metadata.leakedObjects = leaks.map(\.description)
        metadata.cellsFailed = outcomes.filter { if case .failed = $0.status { true } else { false } }.count
        metadata.cellsUnavailable = outcomes.filter { if case .unavailable = $0.status { true } else { false } }.count
        let ranking = soakLength == nil ? Ranking.render(Ranking.groups(outcomes)) : ""
        metadata.ranking = ranking.isEmpty ? nil : ranking.split(separator: "\n").map(String.init)
        metadata.state = writeFailure != nil ? "failed" : Interruption.requested ? "interrupted" : "complete"
        if Interruption.requested { metadata.interruptedBy = Interruption.signalName }
        // With the disk full the metadata may not be writable either: the CSV error is the one to report.
        let metadataFailure = Result { try metadata.write(to: metadataFile) }
        if let writeFailure {
            throw Self.failure("\(writeFailure.description); the run stopped after \(outcomes.count) cells, the CSV holds the \(max(0, outcomes.count - 1)) rows written before")
        }
        if case let .failure(error) = metadataFailure { throw Self.failure("\(error)") }
        if let jsonFile {
            try Self.writing { try jsonFile.rewrite(CSVReport.json(outcomes, runID: runID)) }
        }

        if soakLength == nil {
            print(ConsoleTable.render(outcomes))
            if !ranking.isEmpty { print("\n" + ranking) }
            if let client {
                print("Consumers ran on \(DisplayText.printable(client.server.hostname)) (\(client.address)): latency is RTT/2 (the hosts share no clock); consumer CPU and its cost are the server's.")
            }
            print("")
        } else {
            let failures = outcomes.filter { if case .failed = $0.status { true } else { false } }
            print("Soak: \(passes) passes, \(outcomes.count) cells in \(String(format: "%.0f", wall)) s; \(failures.count) failed, \(leaks.count) leaked objects.")
            for failure in failures {
                print("  failed: \(failure.cell.mechanism.id) \(failure.cell.variant) \(failure.cell.mode.rawValue) \(ByteSize.format(failure.cell.messageBytes)) \(failure.cell.placement.name): \(DisplayText.printable(failure.status.text))")
            }
            leaks.forEach { print("  leaked: \($0)") }
        }
        print("\(outcomes.count) of \(cells.count * passes) cells in \(String(format: "%.1f", wall)) s; \(metadata.cellsFailed) failed, \(metadata.cellsUnavailable) unavailable.")
        print("CSV: \(csvPath)")
        print("Metadata: \(metadataPath)")
        if let jsonFile { print("JSON: \(jsonFile.path)") }
        if !noPlots, !outcomes.isEmpty, !Interruption.requested {
            print(Plotter.draw(csvPath: csvPath))
        }
        if Interruption.requested {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench: interrupted; the CSV holds the \(outcomes.count) completed cells\n".utf8))
            throw ExitCode(128 + Interruption.signal)
        }
        if metadata.cellsFailed > 0 || !leaks.isEmpty { throw ExitCode(1) }
    }

    /// For `--remote`: the session with the server, and the consumer CPU settled against its CPUs.
    /// An unreachable server is one line on stderr and exit 1.
    func connectToServer(_ configuration: inout RunConfiguration) throws -> RemoteClient? {
        guard let target = try remoteTarget() else { return nil }
        let client: RemoteClient
        do {
            client = try RemoteClient(target)
        } catch {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let server = client.server
        if let cpu = consumerCPU, !server.allowedCPUs.contains(cpu) {
            client.close()
            throw Self.usageError("--consumer-cpu \(cpu) is not a CPU the server \(DisplayText.printable(server.hostname)) can run on; allowed there: \(Self.cpuListText(server.allowedCPUs))")
        }
        configuration.placements = configuration.placements.map { placement in
            var placement = placement
            placement.consumerCPU = placement.consumerCPU ?? server.defaultConsumerCPU
            return placement
        }
        return client
    }

    /// A usage error found after parsing (it needed the server's answer): one line, exit 2.
    static func usageError(_ message: String) -> ExitCode {
        try? FileHandle.standardError.write(contentsOf: Data("ipcbench: \(message)\n".utf8))
        return ExitCode(2)
    }

    func remoteTarget() throws -> HostAndPort? {
        guard let remote else { return nil }
        guard let target = HostAndPort(remote), target.port != 0 else {
            throw ValidationError("--remote '\(remote)' is not HOST:PORT; expected an IPv4 address or host name and the port `ipcbench serve` listens on, e.g. 192.168.1.20:\(ControlProtocol.defaultPort)")
        }
        return target
    }

    // MARK: - Input

    func resolvedConfiguration() throws -> RunConfiguration {
        let target = try remoteTarget()
        if target != nil {
            let allowed = MechanismRegistry.acrossHosts.map(\.id)
            if let mechanisms {
                let names = try Self.parseList(mechanisms, option: "--mechanisms", allowed: MechanismRegistry.ids)
                if let local = names.first(where: { !allowed.contains($0) }) {
                    throw ValidationError("--remote runs only mechanisms that work across hosts: \(allowed.joined(separator: ", ")) (not '\(local)')")
                }
            }
            if placements != nil {
                throw ValidationError("--placements cannot be combined with --remote: the consumer runs on the server; use --producer-cpu (here) and --consumer-cpu (on the server)")
            }
            if let consumerCPU, consumerCPU < 0 {
                throw ValidationError("--consumer-cpu \(consumerCPU) is not a CPU number")
            }
        }
        let mechanismList = target != nil && mechanisms == nil ? MechanismRegistry.acrossHosts : try Self.parseMechanisms(mechanisms)
        let modes = try Self.parseList(mode, option: "--mode", allowed: Mode.allCases.map(\.rawValue)).map { Mode(rawValue: $0)! }
        let allVariants = Array(Set(mechanismList.flatMap { m in modes.flatMap { m.variants(for: $0) + m.optionalVariants(for: $0) } })).sorted()
        let variantList = try variants.map { try Self.parseList($0, option: "--variants", allowed: allVariants) }
        let waitList = wait == "all"
            ? WaitStrategy.allCases
            : try Self.parseList(wait, option: "--wait", allowed: WaitStrategy.allCases.map(\.rawValue)).map { WaitStrategy(rawValue: $0)! }
        try Self.checkRange("--spin-then-block", spinThenBlock, Self.spinThenBlockRange, unit: " µs")
        try Self.checkRange("--wait-timeout", waitTimeout, Self.waitTimeoutRange, unit: " s")
        guard let producePolicy = Produce(rawValue: produce) else {
            throw ValidationError("--produce '\(produce)' is not a produce policy; allowed: \(Produce.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let touchPolicy = Touch(rawValue: touch) else {
            throw ValidationError("--touch '\(touch)' is not a touch policy; allowed: \(Touch.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if touchPolicy == .verify, producePolicy != .write {
            throw ValidationError("--touch verify checks the pattern the producer writes, so it needs --produce write (got --produce \(produce))")
        }
        let sizeList = try Self.parseSizes(sizes ?? (quick ? Self.quickSizes : Self.defaultSizes))
        try Self.checkSizesFit(sizeList, explicit: sizes != nil, mechanisms: mechanismList)

        try Self.checkRange("--repetitions", repetitions, Self.repetitionsRange)
        if let messages { try Self.checkRange("--messages", messages, Self.messagesRange) }
        if let warmup { try Self.checkRange("--warmup", warmup, Self.warmupRange) }
        if let duration { try Self.checkRange("--duration", duration, Self.durationRange, unit: " s") }
        try Self.checkRange("--cell-timeout", cellTimeout, Self.cellTimeoutRange, unit: " s")
        let fault = try injectFault.map { name in
            guard let fault = InjectedFault(rawValue: name) else {
                throw ValidationError("unknown fault '\(name)'; allowed: \(InjectedFault.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return fault
        }

        let allowed = Affinity.allowedCPUs()
        // With --remote the consumer's CPU is the server's: checked against its CPUs once connected.
        for (option, cpu) in [("--producer-cpu", producerCPU), ("--consumer-cpu", target == nil ? consumerCPU : nil)] {
            if let cpu, !allowed.contains(cpu) {
                throw ValidationError("\(option) \(cpu) is not a CPU this process can run on; allowed: \(Self.cpuListText(allowed))")
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
                throw ValidationError("--placements cannot be combined with --producer-cpu/--consumer-cpu: choose named placements or explicit CPUs")
            }
            placementList = try Self.parsePlacements(placements, allowedCPUs: allowed)
        } else if producerCPU != nil || consumerCPU != nil {
            placementList = [Placement(producerCPU: producerCPU ?? defaults.producerCPU, consumerCPU: consumerCPU ?? defaults.consumerCPU)]
        } else {
            // The default shows both hand-off costs side by side, across CPUs and on one CPU, for
            // latency; throughput runs across CPUs only, to keep the default suite near a minute.
            placementList = try Self.parsePlacements(allowed.count >= 2 ? "cross-cpu,same-cpu" : "same-cpu", allowedCPUs: allowed)
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
        configuration.memoryNode = try memoryNode.map(Self.parseMemoryNode)
        if let spinPauses {
            guard let count = Int(spinPauses), RunConfiguration.spinPausesRange.contains(count) else {
                let range = RunConfiguration.spinPausesRange
                throw ValidationError("--spin-pauses '\(spinPauses)' is not a pause count; expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            configuration.spinPausesPerPoll = count
        }
        configuration.remote = target?.description
        if let clients {
            configuration.clientCounts = try Self.parsePairs(clients, option: "--clients", noun: "clients")
        }
        if let pairs {
            configuration.pairCounts = try Self.parsePairs(pairs)
        }
        if let readers {
            configuration.readerCounts = try Self.parsePairs(readers, option: "--readers", noun: "readers")
        }
        let several = [("--pairs", configuration.pairCounts), ("--clients", configuration.clientCounts), ("--readers", configuration.readerCounts)]
            .filter { $0.1.contains { $0 > 1 } }
        if several.count > 1 {
            throw ValidationError("\(several.map(\.0).joined(separator: " and ")) above 1 cannot be combined: a cell is several independent pairs, one server with several clients, or one producer with several readers")
        }
        if let (option, _) = several.first {
            if target != nil {
                throw ValidationError("\(option) above 1 cannot be combined with --remote: one pair runs across the hosts")
            }
            if producerCPU != nil || consumerCPU != nil {
                throw ValidationError("\(option) above 1 places the workers itself; it cannot be combined with --producer-cpu/--consumer-cpu (use --placements cross-cpu, same-cpu or unpinned)")
            }
            if let named = placementList.first(where: { !Self.pairPlacements.contains($0.name) }) {
                throw ValidationError("\(option) above 1 works with the placements \(Self.pairPlacements.joined(separator: ", ")); '\(named.name)' places one pair")
            }
            if let choice = configuration.memoryNode, choice == .local || choice == .remote {
                throw ValidationError("--memory-node \(choice) is resolved from one consumer's CPU; with \(option) above 1 the workers spread over CPUs (and nodes), so give a node number")
            }
            configuration.topology = try? Topology.read()
            configuration.allowedCPUs = allowed
            let workers = max(2 * (configuration.pairCounts.max() ?? 1), (configuration.clientCounts.max() ?? 1) + 1, (configuration.readerCounts.max() ?? 1) + 1)
            try Self.ensureDescriptors(forWorkers: workers, option: option)
        }
        if let rate {
            let number = rate.hasSuffix("/s") ? String(rate.dropLast(2)) : rate
            guard let perSecond = Double(number), perSecond >= 1, perSecond <= 10_000_000 else {
                throw ValidationError("--rate '\(rate)' is not a send rate; expected messages per second from 1 to 10000000, e.g. 10000/s")
            }
            configuration.pacedRate = perSecond
        }
        if let targetCi {
            let number = targetCi.hasSuffix("%") ? String(targetCi.dropLast()) : targetCi
            guard let percent = Double(number), percent > 0, percent < 100 else {
                throw ValidationError("--target-ci '\(targetCi)' is not a percentage; expected e.g. 5% (between 0 and 100)")
            }
            configuration.targetRelativeCI = percent / 100
            configuration.repetitions = max(configuration.repetitions, 2)
        }
        return configuration
    }

    static let crossCPU = "cross-cpu"
    /// The placements several pairs can spread from (PairLayout).
    static let pairPlacements = [crossCPU, NamedPlacement.sameCPU.rawValue, NamedPlacement.unpinned.rawValue]

    /// This process holds a control pipe pair per worker and, while starting them, a few more
    /// descriptors each: raises the soft RLIMIT_NOFILE toward the hard one if it is short, and
    /// refuses the run up front if even that is not enough.
    static func ensureDescriptors(forWorkers workers: Int, option: String) throws {
        let needed = rlim_t(32 + 6 * workers)
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < needed else { return }
        var raised = limit
        raised.rlim_cur = min(limit.rlim_max, needed)
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0, raised.rlim_cur >= needed { return }
        throw ValidationError("\(option): \(workers) workers need about \(needed) open descriptors in this process, but the limit is \(limit.rlim_cur) (hard \(limit.rlim_max); ulimit -n); raise it or run fewer")
    }

    /// `--pairs` or `--clients`: distinct counts in the order given.
    static func parsePairs(_ text: String, option: String = "--pairs", noun: String = "pairs") throws -> [Int] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var counts: [Int] = []
        for item in items {
            guard let count = Int(item), pairsRange.contains(count) else {
                throw ValidationError("\(option): '\(item)' is not a number of \(noun); expected whole numbers from \(pairsRange.lowerBound) to \(pairsRange.upperBound), comma-separated, e.g. 1,2,4")
            }
            if !counts.contains(count) { counts.append(count) }
        }
        return counts
    }

    /// Named placements expanded on this machine's topology; unavailable ones stay in the list, marked.
    static func parsePlacements(_ text: String, allowedCPUs: [Int]) throws -> [Placement] {
        let names = try parseList(text, option: "--placements", allowed: [crossCPU] + NamedPlacement.allCases.map(\.rawValue))
        let topology: Topology
        do {
            topology = try Topology.read()
        } catch {
            throw ValidationError("--placements: cannot read the CPU topology from /sys: \(error)")
        }
        return names.map { name in
            if name == crossCPU {
                guard allowedCPUs.count >= 2 else { return .unavailable(name: name, reason: "cross-cpu: only one CPU is allowed") }
                return Placement(name: name, producerCPU: allowedCPUs[0], consumerCPU: allowedCPUs[1])
            }
            switch expand(NamedPlacement(rawValue: name)!, topology: topology, allowedCPUs: allowedCPUs) {
            case let .pinned(placement), let .unpinned(placement): return placement
            case let .unavailable(reason): return .unavailable(name: name, reason: reason)
            }
        }
    }

    /// A node must exist (with memory) here; local and remote are resolved per cell, and a cell they
    /// cannot be resolved for is written as unavailable.
    static func parseMemoryNode(_ text: String) throws -> MemoryNodeChoice {
        let nodes = MemoryNodeFacts.list(MemoryNodeFacts.nodesToOffer())
        guard let choice = MemoryNodeChoice(text) else {
            throw ValidationError("--memory-node '\(text)' is not a NUMA node; expected a node number (here: \(nodes)), local or remote")
        }
        if case let .node(node) = choice, !MemoryNodeFacts.nodesToOffer().contains(node) {
            throw ValidationError("--memory-node \(node): no such NUMA node with memory here; nodes: \(nodes) (or local, remote)")
        }
        return choice
    }

    static func parseList(_ text: String, option: String, allowed: [String]) throws -> [String] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !items.isEmpty, !items.contains("") else { throw ValidationError("\(option) needs a comma-separated list; allowed: \(allowed.joined(separator: ", "))") }
        for item in items where !allowed.contains(item) {
            throw ValidationError("\(option): unknown value '\(item)'; allowed: \(allowed.joined(separator: ", "))")
        }
        return items
    }

    static func parseMechanisms(_ text: String?) throws -> [any Mechanism] {
        guard let text else { return MechanismRegistry.all }
        return try parseList(text, option: "--mechanisms", allowed: MechanismRegistry.ids).map { MechanismRegistry.mechanism(id: $0)! }
    }

    static let largestMessage = 1 << 30

    static func parseSizes(_ text: String) throws -> [Int] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return try items.map { item in
            guard let bytes = ByteSize.parse(item) else {
                throw ValidationError("--sizes: '\(item)' is not a size; expected \(ByteSize.allowedForm)")
            }
            guard bytes >= MessageFormat.minimumMessageBytes, bytes <= largestMessage else {
                throw ValidationError("--sizes: \(item) is out of range; sizes run from \(MessageFormat.minimumMessageBytes) bytes (sequence number + timestamp) to 1G")
            }
            return bytes
        }
    }

    /// An explicit size no selected mechanism can carry is refused up front; in a sweep such cells are
    /// written as unavailable instead.
    static func checkSizesFit(_ sizes: [Int], explicit: Bool, mechanisms: [any Mechanism]) throws {
        guard explicit else { return }
        for size in sizes {
            let limits = mechanisms.map { $0.messageLimit() }
            if limits.allSatisfy({ $0.map { size > $0.bytes } ?? false }) {
                let named = zip(mechanisms, limits).map { "\($0.id) ≤ \($1!.bytes) (\($1!.source))" }.joined(separator: "; ")
                throw ValidationError("--sizes: \(size) bytes is larger than every selected mechanism can carry: \(named)")
            }
        }
    }

    // The ranges of the numeric options, checked before any file is written (README: options table).
    static let repetitionsRange = 1...1000
    /// 64 pairs are 128 worker processes and about 300 descriptors in this one.
    static let pairsRange = 1...64
    static let messagesRange = 1...1_000_000_000_000
    static let warmupRange = 0...1_000_000_000
    /// 1 ms: shorter timed loops measure the clock, not the mechanism; 1 day: longer is a soak.
    static let durationRange = 0.001...86_400.0
    static let cellTimeoutRange = 0.1...86_400.0
    static let spinThenBlockRange = 0.1...1_000_000.0
    static let waitTimeoutRange = 0.001...3600.0

    static func checkRange<Value: Comparable>(_ option: String, _ value: Value, _ range: ClosedRange<Value>, unit: String = "") throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) \(value)\(unit) is out of range; allowed: \(range.lowerBound) to \(range.upperBound)\(unit)")
        }
    }

    static func cpuListText(_ cpus: [Int]) -> String {
        cpus.isEmpty ? "none" : cpus.map(String.init).joined(separator: ",")
    }

    /// Checks where the results go, before any worker starts; for the default, creates a new
    /// directory of this run's own (exclusively: two runs started in the same second get two).
    func outputPath(creatingDefault: Bool = true) throws -> String? {
        guard let out else {
            guard creatingDefault else { return nil }
            let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
            let base = "ipcbench-out/\(host)-\(Self.runID())"
            do {
                try FileManager.default.createDirectory(atPath: "ipcbench-out", withIntermediateDirectories: true)
            } catch {
                throw ValidationError("cannot create the output directory 'ipcbench-out': \(error.localizedDescription)")
            }
            for attempt in 1...100 {
                let directory = attempt == 1 ? base : "\(base)-\(attempt)"
                if mkdir(directory, 0o755) == 0 { return directory + "/results.csv" }
                guard errno == EEXIST else {
                    throw ValidationError("cannot create the output directory '\(directory)': \(String(cString: strerror(errno)))")
                }
            }
            throw ValidationError("cannot create a new output directory under 'ipcbench-out' (100 taken for \(base))")
        }
        let path = out
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--out '\(path)': directory '\(directory)' does not exist; create it or choose another path")
        }
        guard access(directory, W_OK) == 0 else {
            throw ValidationError("--out '\(path)': directory '\(directory)' is not writable")
        }
        guard path.hasSuffix(".csv") else {
            throw ValidationError("--out '\(path)': give a file name ending in .csv (its metadata goes beside it)")
        }
        do {
            try OutputFile.checkReplaceable(path, replacing: force)
            try OutputFile.checkReplaceable(Self.metadataPath(forCSV: path), replacing: force)
            if json { try OutputFile.checkReplaceable(Self.jsonPath(forCSV: path), replacing: force) }
        } catch let error as IPCError {
            throw ValidationError("--out: \(error.description)")
        }
        return path
    }

    /// `mine.csv` → `mine.json` (`--json`).
    static func jsonPath(forCSV csvPath: String) -> String {
        String(csvPath.dropLast(".csv".count)) + ".json"
    }

    /// `results.csv` → `metadata.json`; `mine.csv` → `mine.metadata.json` (so runs can share a folder).
    static func metadataPath(forCSV csvPath: String) -> String {
        let url = URL(fileURLWithPath: csvPath)
        let stem = url.deletingPathExtension().lastPathComponent
        let name = stem == "results" ? "metadata.json" : "\(stem).metadata.json"
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// A results-file write that fails ends the run with its one-line reason.
    static func writing<Value>(_ body: () throws -> Value) throws -> Value {
        do {
            return try body()
        } catch let error as IPCError {
            throw failure(error.description)
        }
    }

    /// One line on stderr, exit 1.
    static func failure(_ message: String) -> ExitCode {
        try? FileHandle.standardError.write(contentsOf: Data("ipcbench: \(message)\n".utf8))
        return ExitCode(1)
    }

    static func runID() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd'T'HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }
}

/// "[12/48] tcp latency 4 KiB — ETA 20 s" on one rewritten stderr line.
final class Progress {
    let total: Int
    let enabled: Bool
    let started = Date()

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    /// `done` repetitions of `total` planned (more with --target-ci: then no estimate).
    func repetitionDone(_ done: Int, label: String) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(started)
        let remaining = done < total ? " — ETA \(Int((elapsed / Double(done) * Double(total - done)).rounded())) s" : ""
        let line = "\r\u{1B}[2K[\(done)/\(total) repetitions] \(label)\(remaining)"
        try? FileHandle.standardError.write(contentsOf: Data(line.utf8))
    }

    /// A line that stays on screen (progress is redrawn below it).
    func note(_ text: String) {
        try? FileHandle.standardError.write(contentsOf: Data(((enabled ? "\r\u{1B}[2K" : "") + "ipcbench: " + text + "\n").utf8))
    }

    func finish() {
        guard enabled else { return }
        try? FileHandle.standardError.write(contentsOf: Data("\r\u{1B}[2K".utf8))
    }
}
