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

    @Option(help: ArgumentHelp("Comma-separated mechanism ids (see `ipcbench list`).", valueName: "ids"))
    var mechanisms: String?

    @Option(help: ArgumentHelp("Comma-separated message sizes: bytes, or with K/M/G suffix (×1024). Default \(RunInput.defaultSizes).", valueName: "sizes"))
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
        "--wait spin-then-block: microseconds of non-blocking retries before a blocking wait, \(RunInput.spinThenBlockRange.lowerBound) to \(RunInput.spinThenBlockRange.upperBound). Default \(Double(WaitStrategy.defaultSpinNanoseconds) / 1000).",
        valueName: "us"))
    var spinThenBlock = Double(WaitStrategy.defaultSpinNanoseconds) / 1000

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "--wait timed: seconds a wait may last before the cell fails with a timeout, \(RunInput.waitTimeoutRange.lowerBound) to \(RunInput.waitTimeoutRange.upperBound). Default \(WaitStrategy.defaultTimeoutSeconds).",
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
        "Producer/consumer pairs of each cell that run at once, each pair on its own channel: a number or a comma-separated sweep (e.g. 1,2,4), \(RunInput.pairsRange.lowerBound) to \(RunInput.pairsRange.upperBound). Pair 0 keeps the placement; the others spread over unused cores, then SMT siblings, then share CPUs (the pair_sharing column says which). Rows give the aggregate msgs/s and bytes/s, latency merged over the pairs and the pairs' spread. Works with the placements cross-cpu, same-cpu and unpinned. Default 1.",
        valueName: "counts"))
    var pairs: String?

    @Option(help: ArgumentHelp(
        "Producers (clients) one consumer (the server) serves at once: a number or a comma-separated sweep (e.g. 1,2,4), \(RunInput.pairsRange.lowerBound) to \(RunInput.pairsRange.upperBound). For mechanisms with a many-to-one shape (unix-stream, tcp: one listening socket, epoll; posix-mq: one request queue, a reply queue per client; udp: one socket, clients told apart by address); others give unavailable rows. The server keeps the consumer's CPU; clients start on the producer's and spread over the rest. Rows give the server's total msgs/s and bytes/s and latency merged over the clients. Not combined with --pairs above 1. Default 1.",
        valueName: "counts"))
    var clients: String?

    @Option(help: ArgumentHelp(
        "Consumers (readers) that each receive every message of one producer, streaming only: a number or a comma-separated sweep, \(RunInput.pairsRange.lowerBound) to \(RunInput.pairsRange.upperBound). For mechanisms with a one-to-many shape (shm-posix in-place/spin: one broadcast ring read in place by all; unix-stream: the message written to a socket per reader); others give unavailable rows. Rows give the bytes delivered to all readers per second. Not combined with --pairs or --clients above 1. Default 1.",
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

    @Flag(help: "A few seconds' smoke run: sizes \(RunInput.quickSizes), one repetition, 0.05 s per cell.")
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

    func soakSeconds() throws -> Double? { try checked { try request.soakSeconds() } }

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
        let session = RunSession(configuration: configuration, soakSeconds: soakLength, pairs: client?.pairs ?? SuiteRunner.localPair)
        let summary = session.run(started: started, notesNoisyCells: !quiet, record: { try report.append($0) }, repetitionDone: { cell, done, pass in
            progress.repetitionDone(done, label: "\(pass)\(cell.mechanism.id) \(cell.mode.rawValue) \(ByteSize.format(cell.messageBytes))")
        }, note: progress.note)
        progress.finish()
        session.complete(&metadata, with: summary)
        let outcomes = summary.outcomes, wall = summary.wallSeconds, ranking = summary.ranking
        // With the disk full the metadata may not be writable either: the CSV error is the one to report.
        let metadataFailure = Result { try metadata.write(to: metadataFile) }
        if let writeFailure = summary.writeFailure {
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
            print("Soak: \(summary.passes) passes, \(outcomes.count) cells in \(String(format: "%.0f", wall)) s; \(summary.failed.count) failed, \(summary.leaks.count) leaked objects.")
            for failure in summary.failed {
                print("  failed: \(failure.cell.mechanism.id) \(failure.cell.variant) \(failure.cell.mode.rawValue) \(ByteSize.format(failure.cell.messageBytes)) \(failure.cell.placement.name): \(DisplayText.printable(failure.status.text))")
            }
            summary.leaks.forEach { print("  leaked: \($0)") }
        }
        print("\(outcomes.count) of \(cells.count * summary.passes) cells in \(String(format: "%.1f", wall)) s; \(metadata.cellsFailed) failed, \(metadata.cellsUnavailable) unavailable.")
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
        if metadata.cellsFailed > 0 || !summary.leaks.isEmpty { throw ExitCode(1) }
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
            throw Self.usageError("--consumer-cpu \(cpu) is not a CPU the server \(DisplayText.printable(server.hostname)) can run on; allowed there: \(RunInput.cpuListText(server.allowedCPUs))")
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

    func remoteTarget() throws -> HostAndPort? { try checked { try request.remoteTarget() } }

    // MARK: - Input

    func resolvedConfiguration() throws -> RunConfiguration { try checked { try request.configuration() } }

    /// The options as RunRequest takes them.
    var request: RunRequest {
        var request = RunRequest()
        request.mechanisms = mechanisms
        request.sizes = sizes
        request.mode = mode
        request.variants = variants
        request.wait = wait
        request.spinThenBlock = spinThenBlock
        request.waitTimeout = waitTimeout
        request.producerCPU = producerCPU
        request.consumerCPU = consumerCPU
        request.placements = placements
        request.pairs = pairs
        request.clients = clients
        request.readers = readers
        request.memoryNode = memoryNode
        request.spinPauses = spinPauses
        request.repetitions = repetitions
        request.rate = rate
        request.targetCI = targetCi
        request.duration = duration
        request.messages = messages
        request.warmup = warmup
        request.produce = produce
        request.touch = touch
        request.cellTimeout = cellTimeout
        request.quick = quick
        request.failFast = failFast
        request.backToBack = backToBack
        request.soak = soak
        request.remote = remote
        request.injectFault = injectFault
        return request
    }

    /// A RunRequest rule broken: ArgumentParser's usage error (one line, exit 2).
    func checked<Value>(_ body: () throws -> Value) throws -> Value {
        do {
            return try body()
        } catch let error as RunInputError {
            throw ValidationError(error.description)
        }
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
