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

    @OptionGroup var options: RunOptions

    func validate() throws {
        _ = try resolvedConfiguration()
        _ = try soakSeconds()
        // With --remote the path is checked once the server has answered, so an unreachable server
        // leaves no empty file behind (still before any worker starts).
        if options.remote == nil { _ = try outputPath(creatingDefault: false) }
    }

    func soakSeconds() throws -> Double? { try checked { try options.request.soakSeconds() } }

    func run() throws {
        var configuration = try resolvedConfiguration()
        Interruption.install()
        // Held while this run may own IPC objects, so `clean` leaves them alone whatever this binary is called.
        do { try RunLock.acquire() } catch { throw Self.failure("cannot create the run lock: \(error)") }
        defer { RunLock.release() }
        // A options.remote run connects first, so an unreachable server leaves no output files behind.
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
            csvFile = try OutputFile(creating: csvPath, replacing: options.force)
            metadataFile = try OutputFile(creating: metadataPath, replacing: options.force)
            if options.json { jsonFile = try OutputFile(creating: Self.jsonPath(forCSV: csvPath), replacing: options.force) }
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
        let progress = Progress(total: cells.count * configuration.repetitions, enabled: !options.quiet && isatty(2) != 0)
        let soakLength = try soakSeconds()
        let session = RunSession(configuration: configuration, soakSeconds: soakLength, pairs: client?.pairs ?? SuiteRunner.localPair)
        let summary = session.run(started: started, notesNoisyCells: !options.quiet, record: { try report.append($0) }, repetitionDone: { cell, done, pass in
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
        if !options.noPlots, !outcomes.isEmpty, !Interruption.requested {
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
        if let cpu = options.consumerCPU, !server.allowedCPUs.contains(cpu) {
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

    func remoteTarget() throws -> HostAndPort? { try checked { try options.request.remoteTarget() } }

    // MARK: - Input

    func resolvedConfiguration() throws -> RunConfiguration { try checked { try options.request.configuration() } }

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
        guard let path = options.out else {
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
            try OutputFile.checkReplaceable(path, replacing: options.force)
            try OutputFile.checkReplaceable(Self.metadataPath(forCSV: path), replacing: options.force)
            if options.json { try OutputFile.checkReplaceable(Self.jsonPath(forCSV: path), replacing: options.force) }
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
